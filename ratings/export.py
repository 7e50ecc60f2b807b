"""Exports of a study's answers: the tidy tables the statistics read and the raw CSV a referee gets.

One row per (rater, item, candidate). ``answer_rows`` streams them from the database (iterator, no whole
study in memory); ``answers_frame`` gathers them into the pandas table of docs/statistics.md; the CSV
writer neutralises cells that a spreadsheet would read as a formula.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from ratings.models import Answer, BlindingGuess, Quality, Study

RAW_COLUMNS = (
    "study", "rater", "rater_is_staff", "career_stage", "experience", "helped_build", "item", "item_kind",
    "galaxy", "manga_id", "iau_name", "nsa_id", "sdss_objid", "ra", "dec", "synthetic", "structure", "source",
    "producer", "producer_version", "producer_parameters", "mask_sha256", "panel_position", "rank", "tie",
    "quality", "quality_label", "attention_passed", "is_decoy", "comment", "flagged_bad_image", "seconds",
    "created_at", "updated_at", "edited",
)
GUESS_COLUMNS = ("study", "rater", "item", "structure", "panel_position", "true_source", "guessed_source",
                 "n_choices")
ATTENTION_PASS_MAX_QUALITY = 1  # the wrong mask must be rated "Mostly poorly" or "Totally failed"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def source_labels(study: Study) -> dict[int, str]:
    """producer id -> the unblinded source name in exports: its kind, or kind:name version if two share a kind."""
    producers = list(study.sources.all())
    kinds = [p.kind for p in producers]
    return {p.pk: (p.kind if kinds.count(p.kind) == 1 else f"{p.kind}:{p.name} {p.version}") for p in producers}


def answer_rows(study: Study) -> Iterator[dict]:
    labels = source_labels(study)
    answers = (Answer.objects.filter(assignment__study=study)
               .select_related("assignment__rater", "assignment__item__galaxy", "candidate__producer",
                               "candidate__mask")
               .order_by("assignment__rater__pseudonym", "assignment__position", "panel_position"))
    passed: dict[int, bool] = {}
    for a in answers.filter(candidate__is_decoy=True):
        passed[a.assignment_id] = a.quality <= ATTENTION_PASS_MAX_QUALITY
    for a in answers.iterator(chunk_size=2000):
        asg, rater, item, cand = a.assignment, a.assignment.rater, a.assignment.item, a.candidate
        g, p = item.galaxy, cand.producer
        yield {
            "study": study.name, "rater": rater.pseudonym, "rater_is_staff": rater.is_staff,
            "career_stage": rater.career_stage, "experience": rater.experience, "helped_build": rater.helped_build,
            "item": str(item.repeat_of_id or item.pk), "item_kind": item.kind,
            "galaxy": g.name, "manga_id": g.manga_id or "", "iau_name": g.iau_name or "", "nsa_id": g.nsa_id or "",
            "sdss_objid": g.sdss_objid or "", "ra": g.ra, "dec": g.dec, "synthetic": g.synthetic,
            "structure": item.structure, "source": labels.get(p.pk, p.kind), "producer": p.name,
            "producer_version": p.version, "producer_parameters": p.parameters_hash[:16],
            "mask_sha256": cand.mask.content_hash, "panel_position": a.panel_position + 1, "rank": a.rank,
            "tie": a.tied, "quality": a.quality, "quality_label": Quality(a.quality).label,
            "attention_passed": passed.get(asg.pk) if item.kind == "attention" else None,
            "is_decoy": cand.is_decoy, "comment": asg.comment, "flagged_bad_image": asg.flagged_bad_image,
            "seconds": round(asg.seconds_spent, 2), "created_at": a.created_at.isoformat(),
            "updated_at": a.updated_at.isoformat(), "edited": a.edits > 0,
        }


def answers_frame(study: Study) -> pd.DataFrame:
    return pd.DataFrame(list(answer_rows(study)), columns=RAW_COLUMNS)


def guess_rows(study: Study) -> Iterator[dict]:
    """One row per answered blinding guess. Guesses name a kind of source (volunteers, model, arc finder),
    so the true source is the producer's kind too, and chance is one over the number of kinds offered."""
    kinds = sorted({p.kind for p in study.sources.all()})
    guesses = (BlindingGuess.objects.filter(rater__study=study, answered_at__isnull=False)
               .exclude(guessed_kind="skipped").select_related("rater", "candidate__producer", "candidate__item"))
    positions: dict[int, dict[int, int]] = {}  # rater -> candidate -> panel position (1-based) where it was seen
    for g in guesses:
        if g.rater_id not in positions:
            positions[g.rater_id] = {c: i + 1 for order in g.rater.assignments.values_list("panel_order", flat=True)
                                     for i, c in enumerate(order)}
        position = positions[g.rater_id].get(g.candidate_id)
        if position is None:  # a guess on a panel this rater never saw cannot be scored
            continue
        yield {
            "study": study.name, "rater": g.rater.pseudonym, "item": str(g.candidate.item_id),
            "structure": g.candidate.item.structure, "panel_position": position,
            "true_source": g.candidate.producer.kind,
            "guessed_source": None if g.guessed_kind in ("", "unknown") else g.guessed_kind,
            "n_choices": len(kinds),
        }


def guesses_frame(study: Study) -> pd.DataFrame:
    return pd.DataFrame(list(guess_rows(study)), columns=GUESS_COLUMNS)


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not execute: text starting with = + - @ (or a tab or carriage return)
    gets a leading apostrophe. Numbers are written as numbers (a negative number is data, not a formula);
    floats in full precision (repr) so the CSV reads back to the same values; missing values are empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else repr(float(value))
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(rows: Iterable[dict], columns: tuple[str, ...]) -> Iterator[str]:
    """UTF-8 CSV text, one line at a time (for a streaming HTTP response or a file)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    yield buf.getvalue()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow([safe_cell(row.get(c)) for c in columns])
        yield buf.getvalue()


def summary_columns(tables: dict[str, pd.DataFrame]) -> tuple[str, ...]:
    """The columns of the summary CSV: ``table`` (the table's name) then every column of every table, in
    order of first appearance. A cell of a column that its table does not have is empty."""
    columns = ["table"]
    for frame in tables.values():
        columns += [c for c in frame.columns if c not in columns]
    return tuple(columns)


def summary_rows(tables: dict[str, pd.DataFrame]) -> Iterator[dict]:
    """The rows of every summary table, each with its table's name in ``table`` (tables in their order)."""
    for name, frame in tables.items():
        plain = frame.astype(object).where(frame.notna(), None)
        for record in plain.to_dict("records"):
            yield {"table": name, **record}


def read_summary_csv(path_or_buffer) -> dict[str, pd.DataFrame]:
    """The summary CSV split back into its tables (columns a table does not have are dropped, so a column
    that is empty in every row of a table is dropped too)."""
    frame = pd.read_csv(path_or_buffer)
    return {str(name): part.drop(columns="table").dropna(axis=1, how="all").reset_index(drop=True)
            for name, part in frame.groupby("table", sort=False)}
