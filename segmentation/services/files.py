"""Files stored once per content, under their hash, through Django's storage API.
"""
from __future__ import annotations

import hashlib

import numpy as np
from django.core.files.base import ContentFile


# --- files by content -------------------------------------------------------------------------------
def store_by_content(field_file, name: str, data: bytes) -> None:
    """Point ``field_file`` (an unsaved model's FileField) at ``<upload_to>/<name>``, writing ``data`` there
    only if no file has that name yet: names are content hashes, so one file serves every row with the same
    content and nothing is ever overwritten. A concurrent writer of the same content can make storage pick
    another name; that copy is removed again."""
    full = field_file.field.generate_filename(field_file.instance, name)
    storage = field_file.storage
    if not storage.exists(full):
        saved = storage.save(full, ContentFile(data))
        if saved != full:
            storage.delete(saved)
    field_file.name = full


# --- images -----------------------------------------------------------------------------------------
def pixels_hash(rgb: np.ndarray) -> str:
    arr = np.ascontiguousarray(rgb)
    return hashlib.sha256(f"{arr.dtype}:{arr.shape}:".encode() + arr.tobytes()).hexdigest()
