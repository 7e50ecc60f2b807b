"""Writes of the segmentation app, one module per domain. Commands, the admin, views and jobs call
these; they keep the model invariants so callers cannot get them wrong.
"""
