"""Statistics of a rating study over a tidy pandas table of answers (Django-free; docs/statistics.md)."""
from .audit import blinding_audit, blinding_confusion, exclusions, per_rater
from .bootstrap import crossed_counts, ratio_bootstrap
from .differences import ordinal_model, rank_tests
from .position import position_contrast
from .quality import position_bias, quality_levels, quality_summary
from .rankings import first_choice, pairwise_wins
from .reliability import alpha_from_counts, attention, intra_rater, krippendorff_alpha, weighted_kappa
from .schema import (
    ANSWER_COLUMNS,
    GUESS_COLUMNS,
    QUALITY_LABELS,
    SchemaError,
    evaluation_has_tie,
    validate_answers,
    validate_guesses,
)
from .summary import primary_answers, read_summary_csv, summary_tables

__all__ = [
    "ANSWER_COLUMNS", "GUESS_COLUMNS", "QUALITY_LABELS", "SchemaError", "alpha_from_counts", "attention",
    "blinding_audit", "blinding_confusion", "crossed_counts", "evaluation_has_tie", "exclusions", "first_choice",
    "intra_rater", "krippendorff_alpha", "ordinal_model", "pairwise_wins", "per_rater", "position_bias",
    "position_contrast",
    "primary_answers", "quality_levels", "quality_summary", "rank_tests", "ratio_bootstrap", "read_summary_csv",
    "summary_tables",
    "validate_answers", "validate_guesses", "weighted_kappa",
]
