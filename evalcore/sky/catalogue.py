"""Catalogue tables (CSV or FITS) and the values importers take from them (no Django).

A table is read whole into columns of Python values (``None`` for empty or masked cells); columns are
found by exact name first, then case-insensitively (FITS catalogues such as the NSA use upper case),
and one element of an array column can be picked as ``NAME[i]``. Value checks live here so every
importer applies the same rules: redshift >= 0, 0 < b/a <= 1, everything finite.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Galaxy fields a catalogue can fill, and identifier fields a row can be joined on.
VALUE_FIELDS = ("redshift", "axis_ratio", "position_angle")
POSITION_FIELDS = ("ra", "dec")
ID_FIELDS = ("manga_id", "nsa_id", "name", "iau_name", "sdss_objid")
# Column names tried when no mapping is given (compared case-insensitively).
DEFAULT_COLUMNS = {
    "redshift": ("redshift", "z"),
    "axis_ratio": ("axis_ratio", "ba", "b_a"),
    "position_angle": ("position_angle", "pa", "phi"),
    "ra": ("ra", "objra"),
    "dec": ("dec", "objdec"),
    "manga_id": ("manga_id", "mangaid"),
    "nsa_id": ("nsa_id", "nsaid"),
    "name": ("name",),
    "iau_name": ("iau_name", "iauname"),
    "sdss_objid": ("sdss_objid", "objid"),
}


class CatalogueError(ValueError):
    """A catalogue that cannot be used as given; the message says why."""


@dataclass
class Table:
    columns: dict[str, list]  # column name -> values, one per row (None = empty)
    source: str

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def find(self, spec: str) -> str:
        """The column name a user wrote (exact, else case-insensitive; ``NAME[i]`` picks an element)."""
        base, index = _split_index(spec)
        name = self._lookup(base)
        if name is None:
            raise CatalogueError(f"{self.source}: no column {base!r} (columns: {', '.join(self.columns)})")
        if index is None:
            return name
        key = f"{name}[{index}]"
        if key not in self.columns:
            values = []
            for cell in self.columns[name]:
                if not isinstance(cell, (list, tuple)) or index >= len(cell):
                    raise CatalogueError(f"{self.source}: column {name} has no element [{index}]")
                values.append(cell[index])
            self.columns[key] = values
        return key

    def _lookup(self, base: str) -> str | None:
        if base in self.columns:
            return base
        hits = [c for c in self.columns if c.lower() == base.lower()]
        return hits[0] if len(hits) == 1 else None

    def has(self, spec: str) -> bool:
        return self._lookup(_split_index(spec)[0]) is not None


def _split_index(spec: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"\s*([^\[\]]+?)\s*\[(\d+)\]\s*", spec)
    return (m.group(1), int(m.group(2))) if m else (spec.strip(), None)


def read_table(path, *, max_bytes: int | None = None) -> Table:
    """Read a CSV (header row, comma-separated) or FITS table (first table HDU) file."""
    path = Path(path)
    if path.is_dir():
        raise CatalogueError(f"{path} is a folder; give the catalogue file itself (a CSV or FITS table)")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise CatalogueError(f"{path}: catalogue is {size} bytes, more than the limit of {max_bytes}")
        with path.open("rb") as fh:
            head = fh.read(9)
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue ({exc.strerror or exc})") from None
    if head.startswith(b"SIMPLE  =") or head[:2] == b"\x1f\x8b":
        return _read_fits_table(path)
    return _read_csv(path)


def _read_csv(path: Path) -> Table:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise CatalogueError(f"{path}: the CSV file is empty")
            header = [h.strip() for h in header]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes or "" in header:
                raise CatalogueError(f"{path}: the CSV header has empty or repeated column names {dupes}")
            columns: dict[str, list] = {h: [] for h in header}
            for line_no, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise CatalogueError(f"{path}: line {line_no} has {len(row)} fields, the header {len(header)}")
                for h, cell in zip(header, row):
                    columns[h].append(cell.strip() or None)
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: not a UTF-8 text CSV file ({exc.reason})") from None
    except csv.Error as exc:
        raise CatalogueError(f"{path}: malformed CSV ({exc})") from None
    return Table(columns=columns, source=str(path))


def _cell(value):
    if value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, np.ndarray):
        return [_cell(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_fits_table(path: Path) -> Table:
    from astropy.io import fits
    from astropy.table import Table as AstropyTable

    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
            if hdu is None:
                raise CatalogueError(f"{path}: the FITS file has no table")
            table = AstropyTable.read(hdu)
    except CatalogueError:
        raise
    except Exception as exc:
        raise CatalogueError(f"{path}: not a readable FITS table ({exc})") from None
    columns = {name: [_cell(v) for v in table[name]] for name in table.colnames}
    return Table(columns=columns, source=str(path))


def resolve_columns(table: Table, mapping: dict[str, str] | None = None,
                    defaults: dict[str, tuple[str, ...]] = DEFAULT_COLUMNS) -> dict[str, str]:
    """field -> column. Explicit ``mapping`` entries must exist; other fields take the first default name
    present in the table."""
    known = set(VALUE_FIELDS) | set(POSITION_FIELDS) | set(ID_FIELDS)
    out = {}
    for field, column in (mapping or {}).items():
        if field not in known:
            raise CatalogueError(f"unknown field {field!r}; known: {', '.join(sorted(known))}")
        out[field] = table.find(column)
    for field, names in defaults.items():
        if field in out:
            continue
        hit = next((n for n in names if table.has(n)), None)
        if hit is not None:
            out[field] = table.find(hit)
    return out


def parse_mapping(items: list[str] | None, what: str = "--map") -> dict[str, str]:
    """``["redshift=Z", "axis_ratio=SERSIC_BA"]`` -> {"redshift": "Z", ...}."""
    out = {}
    for item in items or []:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise CatalogueError(f"{what} takes FIELD=COLUMN, got {item!r}")
        out[field.strip()] = column.strip()
    return out


# --- values -----------------------------------------------------------------------------------------
def as_float(value, what: str) -> float | None:
    """A finite float, None for an empty cell; ValueError names ``what`` for text or NaN/inf."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} is {value!r}, not a finite number")
    return number


def check_value(field: str, value) -> float | None:
    """Validated value of a Galaxy field from a catalogue cell (None when empty). Units: redshift
    dimensionless >= 0; axis_ratio b/a in (0, 1]; position_angle deg east of north, folded into [0, 180);
    ra in [0, 360), dec in [-90, 90] deg."""
    number = as_float(value, field)
    if number is None:
        return None
    if field == "redshift" and number < 0:
        raise ValueError(f"redshift {number} is negative")
    if field == "axis_ratio" and not 0 < number <= 1:
        raise ValueError(f"axis_ratio {number} is outside (0, 1]")
    if field == "position_angle":
        return number % 180.0
    if field == "ra":
        if not 0 <= number < 360:
            raise ValueError(f"ra {number} deg is outside [0, 360)")
    if field == "dec" and not -90 <= number <= 90:
        raise ValueError(f"dec {number} deg is outside [-90, 90]")
    if field == "pixel_scale" and number <= 0:
        raise ValueError(f"pixel_scale {number} arcsec/px is not positive")
    return number


def check_identifier(field: str, value):
    """An identifier as the Galaxy model stores it (nsa_id an int, others text); None when empty
    (and for a negative nsa_id, the catalogues' "none" sentinel)."""
    if value is None:
        return None
    if field == "nsa_id":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"nsa_id {value!r} is not an integer") from None
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"nsa_id {value!r} is not an integer")
        return int(number) if number >= 0 else None  # catalogues write -1 or -9999 for "not in the NSA"
    text = str(value).strip()
    return text or None
