"""Reads of galaxies: ids by split.
"""
from __future__ import annotations

from segmentation.models import Galaxy


def galaxy_ids_in_split(split: str, galaxies=None) -> list[int]:
    """Ids of the galaxies (all, or those of the ``galaxies`` queryset) in ``split``: "train", "val" or "test".

    The split is the sky-cell one of ``evalcore.sky.splits.split_for`` on the galaxy's ra/dec (its name when it
    has no position), exactly as training assigns it and records it in each model version's manifest, so a
    test galaxy is the same galaxy for training, generation, measurements and comparisons.
    """
    from evalcore.sky.splits import SPLITS, split_for

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    rows = (galaxies if galaxies is not None else Galaxy.objects.all()).values_list("pk", "ra", "dec", "name")
    return [pk for pk, ra, dec, name in rows.iterator(chunk_size=2000) if split_for(ra, dec, name=name) == split]


def galaxy_ids(galaxies, split: str | None = None) -> list[int]:
    """Ids of the ``galaxies`` queryset, or of those of them in ``split`` when one is given."""
    return galaxy_ids_in_split(split, galaxies) if split else list(galaxies.values_list("pk", flat=True))
