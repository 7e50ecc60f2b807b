"""Measurements on masks of any source (bar length, spiral pitch) and their agreement with references (no Django).

Conventions (docs/measurements.md): arrays are (H, W) with row 0 = north and east to the left; pixel
(row, col) has its centre at (row, col); position angles are degrees east of north in [0, 180).
Every stored result carries MEASUREMENT_CODE_VERSION so old numbers can be told from new ones.
"""
# Bump when a change could move any stored number (recipe, defaults, conventions).
MEASUREMENT_CODE_VERSION = "measure-1.2"
