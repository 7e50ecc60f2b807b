"""Pixels for people: stretches of galaxy images and colour overlays of masks."""
