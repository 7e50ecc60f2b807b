"""Reads of the segmentation app, one module per domain.
"""
