"""Reads of the rating app.
"""
