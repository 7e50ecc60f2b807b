"""Reading a whole file under a size limit, gunzipped when it holds gzip data (no decompression bombs)."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class FileLimitError(ValueError):
    """A file over its size limit, or gzip data that are corrupt or inflate past it; the message says which."""


def read_bytes_limited(path, max_bytes: int | None) -> bytes:
    """The bytes of ``path``, gunzipped when they start with the gzip magic number.

    Refuses a file of more than ``max_bytes`` bytes, and gzip data that inflate to more: inflation stops at
    the limit, so a small file cannot expand without bound. ``None`` sets no limit. Raises FileLimitError.
    """
    path = Path(path)
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise FileLimitError(f"file is {size} bytes, more than the limit of {max_bytes}")
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    if max_bytes is None:
        try:
            return gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise FileLimitError(f"truncated or corrupt gzip data ({exc})") from None
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        pending = data
        while pending:
            out += inflater.decompress(pending, max(1, max_bytes + 1 - len(out)))
            if len(out) > max_bytes:
                raise FileLimitError(f"decompresses to more than the limit of {max_bytes} bytes")
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise FileLimitError(f"truncated or corrupt gzip data ({exc})") from None
    if not inflater.eof:
        raise FileLimitError("truncated or corrupt gzip data (the compressed stream ends early)")
    return bytes(out)
