"""Readers and writers of the files evalsite reads and writes: GZ3D, truth extensions, FITS bytes, images, masks."""
