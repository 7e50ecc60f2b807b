"""FITS byte streams written straight from numpy arrays (no Django, no astropy HDU objects).

Building an astropy ``BinTableHDU`` costs milliseconds of ``Column`` / ``Card`` / config look-ups per
table, several times the work of the data itself; the synthetic survey writes seven tables per galaxy.
Here an HDU is its header cards (80 bytes each, formatted as astropy formats them), ``END``, blank
padding to a 2880-byte block, then the big-endian data padded with zeros: the same bytes astropy
writes for the same HDU (tests/unit/formats/test_fitsbytes.py compares them), at a fraction of the
cost. Only what the synthetic writers need: integer/float/uint8 images and binary tables of K, D, L
and A columns.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from astropy.io import fits

BLOCK = 2880  # bytes: every header and data unit is a whole number of blocks
CARD = 80
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "END"}
_BITPIX = {"u1": 8, "i2": 16, "i4": 32, "i8": 64, "f4": -32, "f8": -64}
# binary table column formats -> numpy big-endian types ('L' is stored as the bytes 'T' / 'F')
_TFORM_DTYPE = {"K": ">i8", "D": ">f8", "L": "S1"}


def _value_text(value) -> str:
    if isinstance(value, bool | np.bool_):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int | np.integer):
        return f"{int(value):>20}"
    if isinstance(value, str):
        text = "''" if value == "" else f"'{value.replace(chr(39), chr(39) * 2):8}'"
        return f"{text:20}"
    raise TypeError(f"no fast card format for {type(value).__name__}")


@lru_cache(maxsize=4096, typed=True)  # typed: True and 1 are different cards
def card(keyword: str, value, comment: str = "") -> bytes:
    """One 80-byte header card ``KEYWORD = value / comment`` for an int, bool or str value, laid out
    as astropy lays it out; anything longer than a card is formatted by astropy (CONTINUE cards)."""
    try:
        text = f"{keyword:8}= {_value_text(value)}" + (f" / {comment}" if comment else "")
    except TypeError:
        text = ""
    if not text or len(text) > CARD or len(keyword) > 8:
        return str(fits.Card(keyword, value, comment)).encode("ascii")
    return f"{text:{CARD}}".encode("ascii")


def pad(data: bytes, fill: bytes = b"\0") -> bytes:
    """``data`` padded with ``fill`` to a whole number of 2880-byte blocks."""
    extra = -len(data) % BLOCK
    return data + fill * extra if extra else data


def header_block(cards: bytes) -> bytes:
    """Header cards (a multiple of 80 bytes) + END, blank-padded to whole blocks."""
    return pad(cards + f"{'END':{CARD}}".encode("ascii"), b" ")


def header_cards(header: fits.Header) -> bytes:
    """The cards of an astropy header other than the structural ones (SIMPLE, BITPIX, NAXISn, ...),
    which the writers below put first themselves."""
    keep = fits.Header([c for c in header.cards if c.keyword not in _STRUCTURAL
                        and not (c.keyword.startswith("NAXIS") and c.keyword[5:].isdigit())])
    return keep.tostring(sep="", endcard=False, padding=False).encode("ascii")


def image_hdu(data: np.ndarray, cards: bytes = b"", *, primary: bool = False) -> bytearray:
    """Header and data unit of an image (numpy axis order, so an (H, W, 3) array has NAXIS1 = 3), as a
    bytearray (not copied once more into bytes: it is joined with the other HDUs next).
    ``cards``: further header cards after the structural ones (e.g. ``header_cards(wcs_header)``)."""
    data = np.asarray(data)
    kind = f"{data.dtype.kind}{data.dtype.itemsize}"
    if kind not in _BITPIX:
        raise TypeError(f"no FITS image type for {data.dtype}")
    first = card("SIMPLE", True, "conforms to FITS standard") if primary else card("XTENSION", "IMAGE",
                                                                                     "Image extension")
    head = [first, card("BITPIX", _BITPIX[kind], "array data type"),
            card("NAXIS", data.ndim, "number of array dimensions")]
    head += [card(f"NAXIS{i + 1}", n) for i, n in enumerate(reversed(data.shape))]
    head += [card("EXTEND", True)] if primary else [card("PCOUNT", 0, "number of parameters"),
                                                    card("GCOUNT", 1, "number of groups")]
    head = header_block(b"".join(head) + cards)
    # one pass: the pixels are converted to big-endian straight into the output, zero padding included
    out = bytearray(len(head) + data.nbytes + (-data.nbytes % BLOCK))
    out[:len(head)] = head
    if data.size:
        big = np.frombuffer(out, dtype=data.dtype.newbyteorder(">"), count=data.size, offset=len(head))
        big.reshape(data.shape)[...] = data
    return out


def _column_array(tform: str, values, nrows: int) -> tuple[str, np.ndarray]:
    """(FITS TFORM, big-endian numpy array) of one column; text columns are ``<width>A`` wide enough
    for the longest value (at least 1), NUL-padded as astropy writes them."""
    if tform == "A":
        encoded = [str(v).encode("ascii") for v in values]
        width = max([len(v) for v in encoded] + [1])
        return f"{width}A", np.array(encoded, dtype=f"S{width}").reshape(nrows)
    if tform == "L":
        return "L", np.array([b"T" if v else b"F" for v in values], dtype="S1").reshape(nrows)
    return tform, np.asarray(values, dtype=_TFORM_DTYPE[tform]).reshape(nrows)


def table_hdu(columns: list[tuple[str, str, object]], nrows: int, cards: bytes = b"") -> bytes:
    """Binary table extension from ``(name, format, values)`` columns: format ``K`` (int64), ``D``
    (float64), ``L`` (bool) or ``A`` (text, width from the longest value). ``nrows`` rows each."""
    arrays = [(name, *_column_array(tform, values, nrows)) for name, tform, values in columns]
    record = np.dtype([(f"f{i}", a.dtype) for i, (_, _, a) in enumerate(arrays)])
    rows = np.empty(nrows, dtype=record)
    for i, (_, _, a) in enumerate(arrays):
        rows[f"f{i}"] = a
    head = [card("XTENSION", "BINTABLE", "binary table extension"), card("BITPIX", 8, "array data type"),
            card("NAXIS", 2, "number of array dimensions"), card("NAXIS1", record.itemsize, "length of dimension 1"),
            card("NAXIS2", nrows, "length of dimension 2"), card("PCOUNT", 0, "number of group parameters"),
            card("GCOUNT", 1, "number of groups"), card("TFIELDS", len(arrays), "number of table fields")]
    for i, (name, tform, _) in enumerate(arrays, start=1):
        head += [card(f"TTYPE{i}", name), card(f"TFORM{i}", tform)]
    return header_block(b"".join(head) + cards) + (pad(rows.tobytes()) if nrows else b"")


def extname(name: str) -> bytes:
    """The EXTNAME card astropy writes for a named extension."""
    return card("EXTNAME", name, "extension name")


def astropy_hdu_bytes(hdu) -> bytes:
    """Any astropy extension HDU serialised by astropy itself (the slow, general path)."""
    import io

    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf, output_verify="ignore")
    return buf.getvalue()[BLOCK:]  # an empty primary header is exactly one block
