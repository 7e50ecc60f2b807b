"""Segmentation app: galaxies, images, masks and their producers (volunteers, model, arc finder).

Modules without Django (readers, renderers, networks, measurements) can be imported on their own.
"""
