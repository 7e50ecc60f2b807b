"""The tidy answers and guesses tables: their columns, validation and the primary-analysis selection.

The full description of both tables is in docs/statistics.md; this module is its executable form.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# QUALITY_LEVELS (0..3) is passed explicitly wherever a scale is needed; "Mostly well (some minor errors)"
# or better (MOSTLY_WELL) is the study's headline threshold.
from evalcore.vocabulary import MOSTLY_WELL, NOT_ASKED, QUALITY_LABELS, QUALITY_LEVELS  # noqa: F401

ITEM_KINDS = ("real", "repeat", "attention")

ANSWER_COLUMNS = (
    "study", "rater", "rater_is_staff", "item", "galaxy", "synthetic", "structure", "source",
    "panel_position", "rank", "tie", "quality", "item_kind", "attention_passed", "flagged_bad_image", "seconds",
)
GUESS_COLUMNS = (
    "study", "rater", "item", "structure", "panel_position", "true_source", "guessed_source", "n_choices",
)
# One evaluation = one rater's answer to one presentation of one item (all its candidates).
EVALUATION_KEYS = ["study", "rater", "item", "item_kind"]
# One candidate = one source's mask for one (galaxy, structure) in a study; raters are crossed with it.
CANDIDATE_KEYS = ["study", "structure", "galaxy", "source"]

_TRUE = ["true", "1", "1.0", "yes"]
_FALSE = ["false", "0", "0.0", "no"]


class SchemaError(ValueError):
    """The answers or guesses table does not follow docs/statistics.md."""


def _rows(df: pd.DataFrame, bad: pd.Series, limit: int = 5) -> str:
    return ", ".join(str(i) for i in df.index[bad.to_numpy()][:limit])


def _require_columns(df, columns, table: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"the {table} table must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(f"the {table} table lacks column(s) {', '.join(missing)} (see docs/statistics.md)")


def _text(df: pd.DataFrame, col: str, table: str) -> pd.Series:
    """A non-empty text column as a categorical of strings (checked per distinct value, not per row)."""
    cat = df[col].astype("category")
    names = cat.cat.categories.astype(str)
    if names.has_duplicates:  # e.g. 1 and "1" in one column: they are the same identifier
        cat = df[col].where(df[col].isna(), df[col].astype(str)).astype("category")
        names = cat.cat.categories.astype(str)
    cat = cat.cat.rename_categories(names)
    blank = names[names.str.strip() == ""]
    bad = cat.isna() | cat.isin(blank)
    if bad.any():
        raise SchemaError(f"{table}.{col} is empty in {int(bad.sum())} row(s), e.g. rows {_rows(df, bad)}")
    return cat


def _bool(df: pd.DataFrame, col: str, table: str, *, nullable: bool = False) -> pd.Series:
    values = df[col]
    null = values.isna()
    if pd.api.types.is_bool_dtype(values.dtype) and not null.any():
        return values.astype(bool)
    # compare as text so 1/0, True/False and "true"/"false" from a CSV all read the same way
    text = values.astype(object).where(null, values.astype(str).str.strip().str.lower())
    is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
    ok = is_true | is_false | (null & nullable)
    if not ok.all():
        examples = values[~ok].head(3).tolist()
        raise SchemaError(
            f"{table}.{col} must be true/false{' or empty' if nullable else ''}; "
            f"got {examples} in rows {_rows(df, ~ok)}"
        )
    if nullable:
        return pd.Series(pd.array(is_true.where(~null, None), dtype="boolean"), index=values.index)
    return is_true.astype(bool)


def _number(df: pd.DataFrame, col: str, table: str) -> pd.Series:
    try:
        return pd.to_numeric(df[col], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{table}.{col} must be numeric: {exc}") from None


def validate_answers(df: pd.DataFrame) -> pd.DataFrame:
    """Check the answers table against docs/statistics.md and return a normalised copy.

    Raises SchemaError naming the column, the rule and example row labels. Extra columns are kept.
    """
    _require_columns(df, ANSWER_COLUMNS, "answers")
    out, dropped = _asked_only(df)
    for col in ("study", "rater", "item", "galaxy", "structure", "source", "item_kind"):
        # categorical keys: grouping 10^5 answers by them is ~10x faster than by strings
        out[col] = _text(out, col, "answers")
    for col in ("rater_is_staff", "synthetic", "tie", "flagged_bad_image"):
        out[col] = _bool(out, col, "answers")
    out["attention_passed"] = _bool(out, "attention_passed", "answers", nullable=True)
    bad = ~out["item_kind"].isin(ITEM_KINDS)
    if bad.any():
        raise SchemaError(
            f"answers.item_kind must be one of {', '.join(ITEM_KINDS)}; got "
            f"{sorted(set(out.loc[bad, 'item_kind']))[:3]} in rows {_rows(out, bad)}"
        )
    for col in ("panel_position", "rank", "quality", "seconds"):
        out[col] = _number(out, col, "answers")
    checks = [
        ("panel_position", out["panel_position"].isna() | (out["panel_position"] < 1)
         | (out["panel_position"] % 1 != 0), "an integer >= 1"),
        ("rank", out["rank"].notna() & ((out["rank"] < 1) | (out["rank"] % 1 != 0)), "an integer >= 1 or empty"),
        ("quality", out["quality"].notna() & ~out["quality"].isin(QUALITY_LEVELS), "0, 1, 2, 3 or empty"),
        ("seconds", out["seconds"].notna() & (out["seconds"] < 0), ">= 0 or empty"),
    ]
    for col, bad, rule in checks:
        if bad.any():
            raise SchemaError(
                f"answers.{col} must be {rule}; got {out.loc[bad, col].head(3).tolist()} in rows {_rows(out, bad)}"
            )
    need_flag = (out["item_kind"] == "attention") & out["attention_passed"].isna()
    if need_flag.any():
        raise SchemaError(f"answers.attention_passed is empty on attention-check rows {_rows(out, need_flag)}")
    # an attention check may show the decoy beside a genuine mask of the same source, so only real and
    # repeat evaluations need one row per source (panel positions are unique everywhere)
    dup = out.duplicated(EVALUATION_KEYS + ["source"], keep=False) & (out["item_kind"] != "attention")
    if dup.any():
        raise SchemaError(
            "answers has more than one row per (study, rater, item, item_kind, source): rows " + _rows(out, dup)
        )
    dup = out.duplicated(EVALUATION_KEYS + ["panel_position"], keep=False)
    if dup.any():
        raise SchemaError("answers has two candidates in one panel position of an evaluation: rows " + _rows(out, dup))
    # tie must say exactly "another candidate of this evaluation shares my rank"
    shared = out["rank"].notna() & out.duplicated(EVALUATION_KEYS + ["rank"], keep=False)
    if dropped:  # a dropped not-asked candidate may have been the one a rank was shared with
        out["tie"] = shared
    bad = out["tie"] != shared
    if bad.any():
        raise SchemaError(
            "answers.tie disagrees with the ranks (tie must be true exactly when another candidate of the same "
            f"evaluation has the same rank): rows {_rows(out, bad)}"
        )
    for col in ("flagged_bad_image", "seconds", "galaxy", "structure"):
        varying = out.groupby(EVALUATION_KEYS, sort=False)[col].transform("nunique", dropna=False) > 1
        if varying.any():
            raise SchemaError(f"answers.{col} differs between candidates of one evaluation: rows {_rows(out, varying)}")
    return out


def _asked_only(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """A copy without the rows of candidates whose source was not asked for the structure (optional column
    ``mask_state`` = ``not_asked``): such a panel showed a mask that does not exist, so no statistic counts
    it. Returns (the copy, how many rows were dropped)."""
    if "mask_state" not in df.columns:
        return df.copy(), 0
    asked = df["mask_state"].astype(object).where(df["mask_state"].notna(), "").astype(str) != NOT_ASKED
    return df[asked.to_numpy()].copy(), int((~asked).sum())


def validate_guesses(guesses: pd.DataFrame) -> pd.DataFrame:
    """Check the blinding-guesses table against docs/statistics.md and return a normalised copy.

    guessed_source may be empty ("don't know"); such guesses are counted and left out of the accuracy.
    """
    _require_columns(guesses, GUESS_COLUMNS, "guesses")
    out = guesses.copy()
    for col in ("study", "rater", "item", "structure", "true_source"):
        out[col] = _text(out, col, "guesses").astype(str)
    blank = out["guessed_source"].isna() | (out["guessed_source"].astype(str).str.strip() == "")
    out["guessed_source"] = out["guessed_source"].astype(str).where(~blank, None)
    for col in ("panel_position", "n_choices"):
        out[col] = _number(out, col, "guesses")
    bad = out["n_choices"].isna() | (out["n_choices"] < 2) | (out["n_choices"] % 1 != 0)
    if bad.any():
        raise SchemaError(f"guesses.n_choices must be an integer >= 2 in rows {_rows(out, bad)}")
    dup = out.duplicated(["study", "rater", "item", "panel_position"], keep=False)
    if dup.any():
        raise SchemaError("guesses has more than one guess per (study, rater, item, panel_position): rows "
                          + _rows(out, dup))
    return out


def outcome_rows(answers: pd.DataFrame) -> pd.DataFrame:
    """Rows that may enter outcome figures: real items whose image was not flagged as bad."""
    return answers[(answers["item_kind"] == "real") & ~answers["flagged_bad_image"]]


def evaluation_has_tie(answers: pd.DataFrame) -> pd.Series:
    """Per row: does any candidate of its evaluation share a rank ("I can't decide")."""
    return answers.groupby(EVALUATION_KEYS, sort=False)["tie"].transform("any").astype(bool)


def empty_like(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c.startswith(("n_", "share", "ci_")) else object)
                         for c in columns})


def codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of a column and k."""
    c, uniques = pd.factorize(values, sort=True)
    return c, len(uniques)
