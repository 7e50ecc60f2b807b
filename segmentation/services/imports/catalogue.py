"""A catalogue joined to the galaxies: fills redshift, axis ratio and position angle.

Each row is joined by identifier first (MaNGA id, NSA id, name, IAU name, SDSS objid: whichever columns
the table has) and, when no identifier finds a galaxy, by sky position within a radius. A row is applied
only when it leads to exactly one galaxy and no other row leads to the same galaxy; every other row is
reported with its reason (unmatched, ambiguous). Galaxies are created only when asked (``create``).
Values are checked (redshift >= 0, 0 < b/a <= 1, finite); a bad value is reported and left out, the
row's other values still apply.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from evalcore.sky import catalogue as cat
from evalcore.sky.crossmatch import AMBIGUOUS, MATCHED, crossmatch
from segmentation.models import Galaxy, ImportBatch
from segmentation.services.galaxies import galaxy_upsert
from segmentation.services.imports.summary import ImportSummary

DEFAULT_RADIUS_ARCSEC = 10.0
LIST_LIMIT = 200  # unmatched / ambiguous rows listed one by one; the counters hold the totals
CHUNK = 500  # galaxies written per transaction


@dataclass
class Row:
    index: int
    label: str
    ids: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)  # value fields that passed the checks
    ra: float | None = None
    dec: float | None = None
    galaxy: int | None = None  # pk once joined
    how: str = ""  # "manga_id", "sky 1.2 arcsec", ...


class _Reporter:
    """Warnings for row outcomes, listed up to LIST_LIMIT per kind and counted in full."""

    def __init__(self, summary: ImportSummary, limit: int):
        self.summary, self.limit, self.counts = summary, limit, {}

    def __call__(self, kind: str, where: str, reason: str) -> None:
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        self.summary.count(kind)
        if n <= self.limit:
            self.summary.warn(where, f"{kind}: {reason}")

    def close(self) -> None:
        for kind, n in self.counts.items():
            if n > self.limit:
                self.summary.warn("...", f"{n - self.limit} more {kind} not listed")


def _parse_rows(table: cat.Table, columns: dict[str, str], report: _Reporter) -> list[Row]:
    rows = []
    name_col = columns.get("name")
    for i in range(table.n_rows):
        label = f"row {i + 1}"
        if name_col and table.columns[name_col][i]:
            label += f" ({table.columns[name_col][i]})"
        row = Row(index=i, label=label)
        for fld in cat.ID_FIELDS:
            if fld in columns:
                try:
                    value = cat.check_identifier(fld, table.columns[columns[fld]][i])
                except ValueError as exc:
                    report(f"invalid {fld}", label, str(exc))
                    value = None
                if value is not None:
                    row.ids[fld] = value
        for fld in cat.VALUE_FIELDS:
            if fld in columns:
                try:
                    value = cat.check_value(fld, table.columns[columns[fld]][i])
                except ValueError as exc:
                    report(f"invalid {fld}", label, str(exc))
                    continue
                if value is not None:
                    row.values[fld] = value
        if "ra" in columns and "dec" in columns:
            try:
                row.ra = cat.check_value("ra", table.columns[columns["ra"]][i])
                row.dec = cat.check_value("dec", table.columns[columns["dec"]][i])
            except ValueError as exc:
                report("invalid position", label, str(exc))
                row.ra = row.dec = None
        rows.append(row)
    return rows


def _join_by_identifier(rows: list[Row], report: _Reporter) -> list[Row]:
    """Join rows by identifier; returns the rows no identifier found a galaxy for."""
    fields = sorted({f for r in rows for f in r.ids}, key=cat.ID_FIELDS.index)
    lookup: dict[str, dict] = {}
    for fld in fields:
        # one pass over the galaxies instead of an IN list: catalogues have more rows than SQL has parameters
        wanted = {r.ids[fld] for r in rows if fld in r.ids}
        table: dict = {}
        for pk, value in Galaxy.objects.filter(**{f"{fld}__isnull": False}).values_list("pk", fld).iterator():
            if value in wanted:
                table.setdefault(value, []).append(pk)
        lookup[fld] = table
    rest = []
    for row in rows:
        hits = {fld: lookup[fld].get(value, []) for fld, value in row.ids.items()}
        pks = {pk for found in hits.values() for pk in found}
        if len(pks) == 1:
            row.galaxy = pks.pop()
            row.how = "+".join(f for f, found in hits.items() if found)
        elif len(pks) > 1:
            names = dict(Galaxy.objects.filter(pk__in=pks).values_list("pk", "name"))
            detail = "; ".join(f"{f}={row.ids[f]} -> {', '.join(names[p] for p in found)}"
                               for f, found in hits.items() if found)
            report("ambiguous rows", row.label, f"identifiers lead to different galaxies ({detail})")
            row.how = "ambiguous"
        else:
            rest.append(row)
    return rest


def _join_by_position(rows: list[Row], radius_arcsec: float, report: _Reporter) -> list[Row]:
    """Join rows by sky position; returns the rows left unmatched (ambiguous ones are reported)."""
    if not rows:
        return []
    galaxies = list(Galaxy.objects.filter(ra__isnull=False, dec__isnull=False)
                    .values_list("pk", "ra", "dec", "name").iterator())
    pks = np.array([g[0] for g in galaxies], dtype=np.int64)
    ra = np.array([np.nan if r.ra is None else r.ra for r in rows], dtype=float)
    dec = np.array([np.nan if r.dec is None else r.dec for r in rows], dtype=float)
    matches = crossmatch(ra, dec, [g[1] for g in galaxies], [g[2] for g in galaxies], radius_arcsec)
    unmatched = []
    for row, match in zip(rows, matches):
        if match.status == MATCHED:
            row.galaxy = int(pks[match.other])
            row.how = f"sky {match.separation_arcsec:.2f} arcsec"
        elif match.status == AMBIGUOUS:
            near = ", ".join(galaxies[c][3] for c in match.candidates[:5])
            report("ambiguous rows", row.label,
                   f"{len(match.candidates)} galaxies within {radius_arcsec:g} arcsec ({near})")
            row.how = "ambiguous"
        else:
            unmatched.append(row)
    return unmatched


def _unmatched_reason(row: Row, radius_arcsec: float, sky: bool) -> str:
    parts = [f"no galaxy with {', '.join(f'{k}={v}' for k, v in row.ids.items())}"] if row.ids else []
    if row.ra is not None:
        parts.append(f"no galaxy within {radius_arcsec:g} arcsec" if sky else "no ra/dec columns joined")
    elif sky:
        parts.append("no position")
    return "; ".join(parts) or "no identifier and no position"


def _create_name(row: Row) -> str | None:
    for fld in ("name", "iau_name", "manga_id", "nsa_id", "sdss_objid"):
        if row.ids.get(fld) is not None:
            return str(row.ids[fld]) if fld == "name" else f"{fld.replace('_', ' ')} {row.ids[fld]}"
    return None


def _apply(rows: list[Row], only_missing: bool, summary: ImportSummary, progress: bool) -> None:
    bar = tqdm(total=len(rows), desc="catalogue", unit="galaxy", disable=not progress)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        with transaction.atomic():
            galaxies = Galaxy.objects.select_for_update().in_bulk([r.galaxy for r in chunk])
            changed_fields, changed = set(), []
            for row in chunk:
                galaxy = galaxies[row.galaxy]
                values = dict(row.values)
                if row.ra is not None and row.dec is not None and galaxy.ra is None and galaxy.dec is None:
                    values.update(ra=row.ra, dec=row.dec)  # a position is filled, never moved
                diff = {k: v for k, v in values.items() if getattr(galaxy, k) != v
                        and not (only_missing and getattr(galaxy, k) is not None)}
                if not diff:
                    summary.unchanged += 1
                    continue
                for k, v in diff.items():
                    setattr(galaxy, k, v)
                galaxy.updated_at = timezone.now()
                changed_fields.update(diff)
                changed.append(galaxy)
                summary.updated += 1
            if changed:
                Galaxy.objects.bulk_update(changed, [*sorted(changed_fields), "updated_at"])
        bar.update(len(chunk))
    bar.close()


def import_catalogue(*, table: cat.Table, mapping: dict[str, str] | None = None,
                     id_columns: dict[str, str] | None = None, radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
                     create: bool = False, only_missing: bool = False, batch: ImportBatch | None = None,
                     progress: bool = True, list_limit: int = LIST_LIMIT) -> ImportSummary:
    """Join ``table`` to the galaxies and fill their redshift, axis ratio (b/a) and position angle (deg E
    of N). ``mapping``: field -> column for values and ra/dec [deg]; ``id_columns``: identifier field ->
    column. Unmapped fields use the usual column names (catalogue.DEFAULT_COLUMNS). ``radius_arcsec``:
    sky-match radius. ``only_missing``: never overwrite a stored value. Raises CatalogueError when the
    table cannot be joined or has nothing to fill."""
    for fld in id_columns or {}:
        if fld not in cat.ID_FIELDS:
            raise cat.CatalogueError(f"unknown identifier {fld!r}; known: {', '.join(cat.ID_FIELDS)}")
    for fld in mapping or {}:
        if fld in cat.ID_FIELDS:
            raise cat.CatalogueError(f"{fld} is an identifier: give it with --id-column {fld}=COLUMN")
    columns = cat.resolve_columns(table, {**(mapping or {}), **(id_columns or {})})
    if not any(f in columns for f in cat.VALUE_FIELDS):
        raise cat.CatalogueError(
            f"{table.source}: no column to fill {', '.join(cat.VALUE_FIELDS)} from (columns: "
            f"{', '.join(table.columns)}); map one, e.g. --map redshift=Z"
        )
    sky = "ra" in columns and "dec" in columns
    if not sky and not any(f in columns for f in cat.ID_FIELDS):
        raise cat.CatalogueError(f"{table.source}: no identifier column and no ra/dec: nothing to join on")
    if radius_arcsec <= 0:
        raise cat.CatalogueError(f"the match radius must be positive, got {radius_arcsec} arcsec")

    summary = ImportSummary()
    summary.counters["rows"] = table.n_rows
    report = _Reporter(summary, list_limit)
    rows = _parse_rows(table, columns, report)
    rest = _join_by_identifier(rows, report)
    unmatched = _join_by_position(rest, radius_arcsec, report) if sky else rest

    by_galaxy: dict[int, list[Row]] = {}
    for row in rows:
        if row.galaxy is not None:
            by_galaxy.setdefault(row.galaxy, []).append(row)
    joined = []
    shared = Galaxy.objects.in_bulk([pk for pk, group in by_galaxy.items() if len(group) > 1])
    for pk, group in by_galaxy.items():
        if len(group) == 1:
            joined.append(group[0])
            continue
        name = shared[pk].name
        for row in group:
            others = ", ".join(r.label for r in group if r is not row)
            report("ambiguous rows", row.label, f"galaxy {name} is also matched by {others}")

    for row in unmatched:
        name = _create_name(row) if create else None
        if create and name is None:
            summary.fail(row.label, "cannot create a galaxy: the row has no name or identifier")
            continue
        if not create:
            report("unmatched rows", row.label, _unmatched_reason(row, radius_arcsec, sky))
            continue
        with transaction.atomic():
            # galaxy_upsert takes the name apart from the other identifiers
            match = {k: v for k, v in row.ids.items() if k != "name"}
            galaxy, created = galaxy_upsert(
                name=name, match=match, defaults={**row.values, "ra": row.ra, "dec": row.dec}, batch=batch)
        if created:
            summary.imported += 1
        else:
            summary.updated += 1

    summary.skipped = sum(n for k, n in report.counts.items() if k in ("unmatched rows", "ambiguous rows"))
    summary.counters["joined by identifier"] = sum(1 for r in joined if not r.how.startswith("sky"))
    summary.counters["joined by position"] = sum(1 for r in joined if r.how.startswith("sky"))
    _apply(joined, only_missing, summary, progress)
    report.close()
    return summary
