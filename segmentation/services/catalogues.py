"""Reference catalogues (e.g. published bar lengths): read a table file and store its rows matched to
galaxies by position.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from segmentation.models import (
    CatalogueEntry,
    ExternalCatalogue,
)


# --- external catalogues --------------------------------------------------------------------------------
@dataclass
class CatalogueImport:
    catalogue: ExternalCatalogue
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # rows of an earlier import of the same catalogue no longer in the file

    def lines(self) -> list[str]:
        c = self.catalogue
        return [f"catalogue {c.name!r}: created {self.created}, updated {self.updated}, unchanged "
                f"{self.unchanged}, removed {self.removed}; quantities: "
                + ", ".join(f"{q} [{c.units.get(q) or 'no unit'}]" for q in c.column_mapping.get("values", {}))]


def catalogue_import(*, path, name: str, key: str, ra: str, dec: str, values: dict[str, str],
                     units: dict[str, str] | None = None, citation: str = "",
                     max_bytes: int | None = None) -> CatalogueImport:
    """Import a reference catalogue (CSV or FITS table) as ``ExternalCatalogue`` + ``CatalogueEntry`` rows.

    ``key``, ``ra``, ``dec`` (deg) name the identifier and position columns; ``values`` maps a quantity
    name to its column (e.g. {"bar_length": "length_avg", "bar_length_err": "length_stdev"}), ``units``
    a quantity to its unit (e.g. {"bar_length": "kpc"}). All-or-nothing: every problem (missing column,
    text in a number column, repeated key) is reported before anything is written, as a
    ``evalcore.sky.catalogue.CatalogueError``. Importing the same name again replaces the rows.
    """
    from evalcore.sky import catalogue as cat

    units = dict(units or {})
    if not name.strip():
        raise cat.CatalogueError("the catalogue needs a --name")
    unknown_units = sorted(set(units) - set(values))
    if unknown_units:
        raise cat.CatalogueError(f"--unit given for {unknown_units}, which no --map names")
    table = cat.read_table(path, max_bytes=max_bytes)
    problems = []

    def column(spec, what):
        try:
            return table.find(spec)
        except cat.CatalogueError as exc:
            problems.append(f"{what}: {exc}")
            return None

    key_col, ra_col, dec_col = column(key, "--key"), column(ra, "--ra"), column(dec, "--dec")
    value_cols = {q: column(c, f"--map {q}") for q, c in values.items()}
    if problems:
        raise cat.CatalogueError("; ".join(problems))
    rows, seen = {}, {}
    for i in range(table.n_rows):
        line = i + 2  # CSV line number (header is line 1)
        row_key = table.columns[key_col][i]
        if row_key is None:
            problems.append(f"row {line}: no {key_col}")
            continue
        row_key = str(row_key)
        if row_key in seen:
            problems.append(f"row {line}: {key_col} {row_key} repeats row {seen[row_key]}")
            continue
        seen[row_key] = line
        entry = {}
        for field_name, col in (("ra", ra_col), ("dec", dec_col)):
            try:
                entry[field_name] = cat.as_float(table.columns[col][i], f"row {line} {col}")
            except ValueError as exc:
                problems.append(str(exc))
        entry["values"] = {}
        for q, col in value_cols.items():
            try:
                entry["values"][q] = cat.as_float(table.columns[col][i], f"row {line} {col}")
            except ValueError as exc:
                problems.append(str(exc))
        rows[row_key] = entry
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise cat.CatalogueError(f"{table.source}: nothing imported: " + "; ".join(problems[:10]) + more)

    mapping = {"key": key_col, "ra": ra_col, "dec": dec_col, "values": value_cols}
    with transaction.atomic():
        catalogue, _ = ExternalCatalogue.objects.get_or_create(name=name.strip())
        catalogue.citation = citation or catalogue.citation
        catalogue.column_mapping, catalogue.units, catalogue.source_file = mapping, units, str(path)
        catalogue.save()
        result = CatalogueImport(catalogue=catalogue)
        old = {e.key: e for e in catalogue.entries.all()}
        new = []
        for row_key, entry in rows.items():
            stored = old.pop(row_key, None)
            if stored is None:
                new.append(CatalogueEntry(catalogue=catalogue, key=row_key, **entry))
                result.created += 1
            elif (stored.ra, stored.dec, stored.values) == (entry["ra"], entry["dec"], entry["values"]):
                result.unchanged += 1
            else:
                stored.ra, stored.dec, stored.values = entry["ra"], entry["dec"], entry["values"]
                stored.save(update_fields=["ra", "dec", "values"])
                result.updated += 1
        CatalogueEntry.objects.bulk_create(new, batch_size=1000)
        if old:
            CatalogueEntry.objects.filter(pk__in=[e.pk for e in old.values()]).delete()
            result.removed = len(old)
    return result
