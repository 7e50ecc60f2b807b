"""Mask sources: the registry and one module per source that makes masks from images.
"""
