"""Which galaxies: the one galaxy selection every command, the admin, training, generation, measurement,
export and rating studies use, and ids by split.

A ``GalaxySelection`` says: synthetic galaxies only, real ones only, or any; optionally some names (each
must exist); optionally one split - the sky-cell split of ``evalcore.sky.splits`` that training assigns and
records in each model version's manifest, or, with ``split_of``, the split that model version really used
(galaxies it never saw count as held out); then optionally a seeded random sample or the first ``limit``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from evalcore.sky.splits import SPLITS
from segmentation.models import Galaxy

SYNTHETIC_CHOICES = ("any", "only", "exclude")


@dataclass(frozen=True)
class GalaxySelection:
    synthetic: str = "any"
    names: tuple[str, ...] = ()
    split: str | None = None
    split_of: int | None = None  # a ModelVersion pk: its manifest decides the split
    sample: int | None = None
    seed: int = 0
    limit: int | None = None

    def __post_init__(self):
        if self.synthetic not in SYNTHETIC_CHOICES:
            raise ValueError(f"synthetic takes {'|'.join(SYNTHETIC_CHOICES)}, got {self.synthetic!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; one of {', '.join(SPLITS)}")
        if self.sample is not None and self.sample < 1:
            raise ValueError("a sample needs at least one galaxy")
        object.__setattr__(self, "names", tuple(self.names or ()))

    def as_dict(self) -> dict:
        """JSON-ready, for the record a run or a study keeps of what it was asked for."""
        return {"synthetic": self.synthetic, "names": list(self.names), "split": self.split,
                "split_of": self.split_of, "sample": self.sample, "seed": self.seed, "limit": self.limit}


def selected_queryset(selection: GalaxySelection):
    """The selected galaxies as a queryset, before any sample or limit (for selections of masks and for
    counting without loading every galaxy). Raises ValueError naming galaxies that do not exist."""
    qs = Galaxy.objects.all()
    if selection.synthetic != "any":
        qs = qs.filter(synthetic=selection.synthetic == "only")
    if selection.names:
        found = set(Galaxy.objects.filter(name__in=selection.names).values_list("name", flat=True))
        missing = [n for n in selection.names if n not in found]
        if missing:
            raise ValueError(f"no galaxy named {', '.join(missing[:20])}" + (" ..." if len(missing) > 20 else ""))
        qs = qs.filter(name__in=selection.names)
    if selection.split:
        if selection.split_of is not None:
            qs = qs.filter(pk__in=_ids_in_version_split(selection.split, selection.split_of, qs))
        else:
            qs = qs.filter(pk__in=galaxy_ids_in_split(selection.split, qs))
    return qs


def galaxies_selected(selection: GalaxySelection) -> list[Galaxy]:
    """The selected galaxies: in the order of the names given, else by id; then the seeded sample (in its
    drawn order) or the first ``limit``. Raises ValueError naming galaxies that do not exist."""
    galaxies = list(selected_queryset(selection).order_by("pk"))
    if selection.names:
        order = {n: i for i, n in enumerate(selection.names)}
        galaxies.sort(key=lambda g: order[g.name])
    if selection.sample is not None:
        galaxies = random.Random(selection.seed).sample(galaxies, min(selection.sample, len(galaxies)))
    if selection.limit:
        galaxies = galaxies[: selection.limit]
    return galaxies


def galaxy_ids_in_split(split: str, galaxies=None) -> list[int]:
    """Ids of the galaxies (all, or those of the ``galaxies`` queryset) in ``split``: "train", "val" or "test".

    The split is the sky-cell one of ``evalcore.sky.splits.split_for`` on the galaxy's ra/dec (its name when it
    has no position), exactly as training assigns it and records it in each model version's manifest, so a
    test galaxy is the same galaxy for training, generation, measurements and comparisons.
    """
    from evalcore.sky.splits import split_for

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    rows = (galaxies if galaxies is not None else Galaxy.objects.all()).values_list("pk", "ra", "dec", "name")
    return [pk for pk, ra, dec, name in rows.iterator(chunk_size=2000) if split_for(ra, dec, name=name) == split]


def _ids_in_version_split(split: str, version_id: int, galaxies) -> list[int]:
    """Ids in ``split`` as the model version's manifest records it; galaxies it never saw are "test"."""
    from segmentation.models import ModelVersion
    from segmentation.selectors.model_versions import model_version_splits

    used = model_version_splits(ModelVersion.objects.get(pk=version_id))
    return [pk for pk in galaxies.values_list("pk", flat=True) if used.get(pk, "test") == split]
