"""Positions on the sky: GZ3D polygons rasterised and reprojected, cross-matching, splits, catalogues, downloads."""
