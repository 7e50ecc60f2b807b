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

from evalcore import vocabulary
from ratings.models import Answer, AnswerRevision, BlindingGuess, Candidate, Item, Rater, Study
from segmentation.models import Producer

RAW_COLUMNS = (
    "study", "rater", "rater_is_staff", "career_stage", "experience", "helped_build", "item", "item_kind",
    "galaxy", "manga_id", "iau_name", "nsa_id", "sdss_objid", "ra", "dec", "synthetic", "structure", "source",
    "producer", "producer_version", "producer_parameters", "mask_sha256", "sequence_position", "panel_position",
    "rank", "tie", "quality", "quality_label", "attention_passed", "is_decoy", "comment", "flagged_bad_image",
    "seconds", "first_shown_at", "submitted_at", "created_at", "updated_at", "edited", "edits",
)
REVISION_COLUMNS = (
    "study", "rater", "item", "item_kind", "galaxy", "structure", "source", "sequence_position", "panel_position",
    "revision", "rank", "tie", "quality", "quality_label", "valid_from", "replaced_at",
)
# Integer identifiers are written as integers and -1 when a galaxy has none, so that pandas.read_csv with
# its defaults reads them as int64, exactly: an empty cell would make the column float64, and float64 holds
# integers exactly only up to 2**53 (SDSS objIDs are about 1.2e18).
NO_ID = -1
GUESS_COLUMNS = ("study", "rater", "item", "structure", "panel_position", "true_source", "guessed_source",
                 "n_choices")
ATTENTION_PASS_MAX_QUALITY = 1  # the wrong mask must be rated "Mostly poorly" or "Totally failed"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
QUALITY_LABELS = vocabulary.QUALITY_FULL_LABELS


def source_labels(study: Study) -> dict[int, str]:
    """producer id -> the unblinded source name in exports: its kind, or kind:name version if two share a kind."""
    return vocabulary.source_labels((p.pk, p.kind, p.name, p.version) for p in study.sources.all())


def answer_rows(study: Study) -> Iterator[dict]:
    """One dict per stored answer (keys RAW_COLUMNS), ordered by rater, sequence position and panel.

    The answers are streamed as bare tuples; raters, items, galaxies and candidates (a few per item, not
    per answer) are looked up from dictionaries read once, so no model instance is built per answer."""
    labels = source_labels(study)
    producers = {p.pk: p for p in study.sources.all()}
    raters = {r["pk"]: r for r in Rater.objects.filter(study=study).values(
        "pk", "pseudonym", "is_staff", "career_stage", "experience", "helped_build")}
    galaxy_fields = ("name", "manga_id", "iau_name", "nsa_id", "sdss_objid", "ra", "dec", "synthetic")
    items = {i["pk"]: i for i in Item.objects.filter(study=study).values(
        "pk", "kind", "structure", "repeat_of_id", *(f"galaxy__{f}" for f in galaxy_fields))}
    candidates = {c[0]: c[1:] for c in Candidate.objects.filter(item__study=study).values_list(
        "pk", "producer_id", "mask__content_hash", "is_decoy")}
    answers = (Answer.objects.filter(assignment__study=study)
               .order_by("assignment__rater__pseudonym", "assignment__position", "panel_position"))
    passed = {asg: quality <= ATTENTION_PASS_MAX_QUALITY for asg, quality in answers.filter(
        candidate__is_decoy=True).values_list("assignment_id", "quality")}
    for (asg, cand_id, panel_position, rank, tied, quality, created, updated, edits, rater_id, item_id,
         seconds, comment, flagged, position, shown, submitted) in answers.values_list(
            "assignment_id", "candidate_id", "panel_position", "rank", "tied", "quality", "created_at",
            "updated_at", "edits", "assignment__rater_id", "assignment__item_id", "assignment__seconds_spent",
            "assignment__comment", "assignment__flagged_bad_image", "assignment__position",
            "assignment__first_shown_at", "assignment__submitted_at").iterator(chunk_size=5000):
        rater, item = raters[rater_id], items[item_id]
        producer_id, mask_hash, is_decoy = candidates[cand_id]
        p = producers.get(producer_id)
        if p is None:  # a candidate whose producer was removed from the study's sources afterwards
            p = producers[producer_id] = Producer.objects.get(pk=producer_id)
        yield {
            "study": study.name, "rater": rater["pseudonym"], "rater_is_staff": rater["is_staff"],
            "career_stage": rater["career_stage"], "experience": rater["experience"],
            "helped_build": rater["helped_build"],
            "item": str(item["repeat_of_id"] or item_id), "item_kind": item["kind"],
            "galaxy": item["galaxy__name"], "manga_id": item["galaxy__manga_id"] or "",
            "iau_name": item["galaxy__iau_name"] or "", "nsa_id": integer_id(item["galaxy__nsa_id"]),
            "sdss_objid": integer_id(item["galaxy__sdss_objid"]), "ra": item["galaxy__ra"],
            "dec": item["galaxy__dec"],
            "synthetic": item["galaxy__synthetic"],
            "structure": item["structure"], "source": labels.get(producer_id, p.kind), "producer": p.name,
            "producer_version": p.version, "producer_parameters": p.parameters_hash[:16],
            "mask_sha256": mask_hash, "sequence_position": position + 1, "panel_position": panel_position + 1,
            "rank": rank,
            "tie": tied, "quality": quality, "quality_label": QUALITY_LABELS[quality],
            "attention_passed": passed.get(asg) if item["kind"] == "attention" else None,
            "is_decoy": is_decoy, "comment": comment, "flagged_bad_image": flagged,
            "seconds": round(seconds, 2), "first_shown_at": _iso(shown), "submitted_at": _iso(submitted),
            "created_at": created.isoformat(), "updated_at": updated.isoformat(), "edited": edits > 0,
            "edits": edits,
        }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def integer_id(value):
    """An identifier stored as digits, as an int (NO_ID when there is none); any other text as it is."""
    if value is None or value == "":
        return NO_ID
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() else text


def revision_rows(study: Study) -> Iterator[dict]:
    """One dict per AnswerRevision (keys REVISION_COLUMNS): the values an answer had before the rater changed
    it, numbered 1, 2, ... per answer in the order they were replaced, with the time they were given
    (``valid_from``: the answer's creation or the previous change) and replaced. The answer's current values
    are its row in the raw export (``edits`` there counts these rows)."""
    labels = source_labels(study)
    revisions = (AnswerRevision.objects.filter(answer__assignment__study=study)
                 .order_by("answer__assignment__rater__pseudonym", "answer__assignment__position",
                           "answer__panel_position", "replaced_at", "pk")
                 .values_list("answer_id", "rank", "tied", "quality", "replaced_at", "answer__created_at",
                              "answer__panel_position", "answer__assignment__rater__pseudonym",
                              "answer__assignment__position", "answer__assignment__item_id",
                              "answer__assignment__item__repeat_of_id", "answer__assignment__item__kind",
                              "answer__assignment__item__galaxy__name", "answer__assignment__item__structure",
                              "answer__candidate__producer_id", "answer__candidate__producer__kind"))
    previous: dict[int, tuple[int, object]] = {}  # answer -> (revision number, its replaced_at)
    for (answer_id, rank, tied, quality, replaced, created, panel_position, rater, position, item_id, repeat_of,
         kind, galaxy, structure, producer_id, producer_kind) in revisions.iterator(chunk_size=5000):
        number, since = previous.get(answer_id, (0, created))
        previous[answer_id] = (number + 1, replaced)
        yield {
            "study": study.name, "rater": rater, "item": str(repeat_of or item_id), "item_kind": kind,
            "galaxy": galaxy, "structure": structure, "source": labels.get(producer_id, producer_kind),
            "sequence_position": position + 1, "panel_position": panel_position + 1, "revision": number + 1,
            "rank": rank, "tie": tied, "quality": quality, "quality_label": QUALITY_LABELS[quality],
            "valid_from": since.isoformat(), "replaced_at": replaced.isoformat(),
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
