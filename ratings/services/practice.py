"""A study's practice set: galaxies outside the study (and outside the compared model's test split where
possible, synthetic ones with a known truth first), chosen and frozen when the study opens.
"""
from __future__ import annotations

import random

from ratings.models import (
    Candidate,
    Item,
    Study,
)
from ratings.selectors.studies import candidate_mask
from segmentation.models import Galaxy, Mask


def practice_galaxies(*, study: Study, exclude=()) -> list[tuple[Galaxy, str, bool]]:
    """The (galaxy, structure, has known truth) a study's practice may use, best first: never a galaxy that
    is an item of the study (nor in ``exclude``); at least two of the study's sources asked for the structure;
    galaxies outside the compared model's test split first (the test split is kept for the study itself; the
    sky split when the study names no model version), then synthetic galaxies with a true mask (known truth),
    then a seeded shuffle."""
    sources = list(study.sources.all())
    if not sources or not study.structures:
        return []
    used = set(study.items.values_list("galaxy_id", flat=True)) | set(exclude)
    asked: dict[tuple[int, str], set[int]] = {}
    for gid, structure, pid in (Mask.objects.filter(producer__in=sources, structure__in=study.structures,
                                                    is_current=True)
                                .exclude(state=Mask.State.NOT_ASKED).exclude(galaxy_id__in=used)
                                .values_list("galaxy_id", "structure", "producer_id")):
        asked.setdefault((gid, structure), set()).add(pid)
    need = min(2, len(sources))
    pairs = sorted(k for k, v in asked.items() if len(v) >= need)
    if not pairs:
        return []
    galaxies = Galaxy.objects.in_bulk({g for g, _ in pairs})
    truth = set(Mask.objects.filter(galaxy_id__in=galaxies, producer__kind="truth", is_current=True,
                                    galaxy__synthetic=True, state=Mask.State.MARKED)
                .values_list("galaxy_id", "structure"))
    if study.test_split_of_id:
        from segmentation.selectors.model_versions import model_version_splits

        splits = model_version_splits(study.test_split_of)
        in_test = {g for g in galaxies if splits.get(g) == "test"}
    else:
        from evalcore.sky.splits import split_for

        in_test = {g.pk for g in galaxies.values() if split_for(g.ra, g.dec, name=g.name) == "test"}
    rng = random.Random(f"practice-{study.seed}")
    order = {pair: rng.random() for pair in pairs}
    pairs.sort(key=lambda p: (p[0] in in_test, p not in truth, order[p]))
    return [(galaxies[g], structure, (g, structure) in truth) for g, structure in pairs]


def practice_create(*, study: Study) -> list[Item]:
    """The study's practice items, made once when it opens and frozen with the design: up to
    ``practice_items`` (galaxy, structure) from ``practice_galaxies`` - never a galaxy the study's raters
    will rate - one galaxy each, with a candidate per asked source. Returns them (``has_truth`` set)."""
    if study.practice_items <= 0:
        return []
    sources = list(study.sources.all())
    out, seen = [], set()
    for galaxy, structure, has_truth in practice_galaxies(study=study):
        if len(out) >= study.practice_items:
            break
        if galaxy.pk in seen:
            continue
        masks = [(p, candidate_mask(galaxy, structure, p)) for p in sources]
        masks = [(p, m) for p, m in masks if m is not None and m.state != Mask.State.NOT_ASKED]
        if len({m.image_id for _, m in masks}) != 1:
            continue  # the panels of one item must lie on one image
        item = Item.objects.create(study=study, galaxy=galaxy, structure=structure, kind=Item.Kind.PRACTICE)
        Candidate.objects.bulk_create([Candidate(item=item, mask=m, producer=p) for p, m in masks])
        item.has_truth = has_truth
        seen.add(galaxy.pk)
        out.append(item)
    return out
