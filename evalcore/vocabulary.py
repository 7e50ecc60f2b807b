"""The words evalsite uses everywhere, each defined once: structures, splits, mask states, mask sources and
the four quality levels of a rating (no Django; the Django models build their choices from these)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

# Structures a mask can mark; also the order of the U-Net's output channels.
SPIRAL, BAR = "spiral", "bar"
STRUCTURES = (SPIRAL, BAR)
STRUCTURE_LABELS = {SPIRAL: "Spiral arms", BAR: "Bar"}

# The train / validation / test split of a galaxy (``evalcore.sky.splits`` decides it).
TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)

# What a mask says: its source was not asked about the structure, was asked and marked nothing, or marked it.
NOT_ASKED, EMPTY, MARKED = "not_asked", "empty", "marked"
MASK_STATE_LABELS = {NOT_ASKED: "Not asked", EMPTY: "Asked, nothing marked", MARKED: "Marked"}

# Who made a mask (a Producer's kind).
VOLUNTEERS, MODEL, SPARCFIRE, TRUTH = "volunteers", "model", "sparcfire", "truth"
SOURCE_LABELS = {VOLUNTEERS: "Volunteers", MODEL: "Model", SPARCFIRE: "Arc finder (SpArcFiRe method)",
                 TRUTH: "Ground truth (synthetic)"}

# How a study draws its mask panels (evalcore.pixels.matched; docs/ratings.md "Matched display").
MATCHED, MATCHED_SOFT, RAW_SOFT, ONE_THRESHOLD = "matched", "matched_soft", "soft", "binary"
DISPLAY_LABELS = {MATCHED: "Matched: each source at its own level, one drawing rule (blinded)",
                  MATCHED_SOFT: "Matched soft: common levels above a floor, one drawing rule",
                  RAW_SOFT: "Raw soft fraction map (gives sources away; audit only)",
                  ONE_THRESHOLD: "One threshold for every source, not each source's own level"}

# The rating scale, worst to best: value -> (short label, full label as raters read it).
QUALITY = {
    0: ("Totally failed", "Totally failed"),
    1: ("Mostly poorly", "Mostly poorly (some major errors)"),
    2: ("Mostly well", "Mostly well (some minor errors)"),
    3: ("Perfectly", "Perfectly"),
}
QUALITY_LEVELS = tuple(QUALITY)  # 0..3
QUALITY_LABELS = {level: short for level, (short, _) in QUALITY.items()}
QUALITY_FULL_LABELS = {level: full for level, (_, full) in QUALITY.items()}
QUALITY_NAMES = {0: "FAILED", 1: "POORLY", 2: "WELL", 3: "PERFECT"}  # the Django choices' member names
MOSTLY_WELL = 2  # "Mostly well or better" is quality >= this
# The item page's quality choices, best first: (value, full label, keyboard shortcut); rate.js uses the same keys.
QUALITY_KEYS = [(level, QUALITY_FULL_LABELS[level], key) for level, key in zip((3, 2, 1, 0), "PWOF", strict=True)]


def source_labels(producers: Iterable[tuple], *, separator: str = ":") -> dict:
    """How to name each of several mask sources side by side: ``{key: label}`` for (key, kind, name,
    version) tuples. A source is named by its kind (``model``), or by ``kind:name version`` when another
    source of the same kind is among them."""
    producers = list(producers)
    kinds = [kind for _, kind, _, _ in producers]
    return {key: kind if kinds.count(kind) == 1 else f"{kind}{separator}{name} {version}"
            for key, kind, name, version in producers}


def choices(labels: Mapping, names: Mapping | None = None) -> list[tuple[str, tuple]]:
    """Members for Django's functional ``TextChoices``/``IntegerChoices`` API: ``[(NAME, (value, label))]``."""
    return [((names or {}).get(value) or str(value).upper(), (value, label)) for value, label in labels.items()]
