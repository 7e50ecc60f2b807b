"""Reads for setting a study up: the galaxies a selection asks for, planned against actual items, invitation
links, sources by name. The admin's study page and the study commands read through these."""
from __future__ import annotations

from ratings.models import Study
from segmentation.models import Image, Mask


def study_galaxies(study: Study, *, mode: str, n: int | None = None, seed: int = 0, names=(),
                   synthetic: str = "any", split: str | None = None):
    """The galaxies a study's selection asks for, and the record of how they were chosen.

    ``mode``: "sample" (a seeded random sample of ``n``), "names" (exactly these, in order) or "filter" (every
    match). ``synthetic``: "any", "only" or "exclude". ``split``: only galaxies of that split; for "test" in a
    study that compares a model version (``test_split_of``), the galaxies that version did not train or tune
    on (its manifest), else the sky-cell split every command uses. The record keeps what was asked and how
    many galaxies were available and chosen, so a shrunken sample shows. Raises ValueError for bad input."""
    import random

    from segmentation.selectors.galaxies import GalaxySelection, galaxies_selected

    if mode not in ("sample", "names", "filter"):
        raise ValueError(f"unknown selection mode {mode!r}: sample, names or filter")
    names = [str(x).strip() for x in names if str(x).strip()]
    if mode == "names" and not names:
        raise ValueError("give the galaxies' names")
    galaxies = galaxies_selected(GalaxySelection(
        synthetic=synthetic, names=tuple(dict.fromkeys(names)) if mode == "names" else (), split=split or None,
        split_of=study.test_split_of_id if split == "test" else None))
    available = len(galaxies)
    if mode == "sample":
        if not n or n < 1:
            raise ValueError("say how many galaxies to sample")
        galaxies = random.Random(seed or 0).sample(galaxies, min(n, len(galaxies)))
    record = {"mode": mode, "n": n if mode == "sample" else None, "seed": seed or 0, "names": names,
              "synthetic": synthetic, "split": split or None, "available": available, "chosen": len(galaxies)}
    if mode == "sample":
        record["asked"] = n
    return galaxies, record


def items_plan(study: Study) -> dict:
    """Planned against actual real items of a study, and whether a shortfall still needs acknowledging."""
    from ratings.models import Item

    items = study.items.filter(kind=Item.Kind.REAL)
    actual = items.count()
    planned = study.planned_items
    galaxies = items.values("galaxy_id").distinct().count()
    short = planned is not None and actual < planned
    return {"planned": planned, "actual": actual, "galaxies": galaxies, "structures": list(study.structures),
            "asked_galaxies": (study.selection or {}).get("asked"),
            "available_galaxies": (study.selection or {}).get("available"),
            "shortfall": (planned - actual) if short else 0,
            "acknowledged": short and study.shortfall_acknowledged == actual}


def invitation_url(invitation) -> str:
    """The absolute join link of an invitation: ``EVALSITE_BASE_URL`` + the join path."""
    from django.conf import settings
    from django.urls import reverse

    return settings.EVALSITE_BASE_URL.rstrip("/") + reverse("ratings:join", args=[invitation.token])


def producers_named(names) -> list:
    """The sources called ``names``: a producer's name (or "name version"), or a model version's name.
    Raises ValueError naming what matched nothing or more than one source."""
    from django.db.models import Value
    from django.db.models.functions import Concat

    from segmentation.models import ModelVersion, Producer

    out, problems = [], []
    for name in names:
        found = list(Producer.objects.filter(name=name))
        if not found:
            found = list(Producer.objects.annotate(full=Concat("name", Value(" "), "version")).filter(full=name))
        if not found:
            found = [v.producer for v in ModelVersion.objects.filter(name=name).select_related("producer")]
        if len(found) == 1:
            out.append(found[0])
        elif not found:
            problems.append(f"no source called {name!r}")
        else:
            problems.append(f"{name!r} names {len(found)} sources ({'; '.join(str(p) for p in found)}): "
                            "add the version, e.g. \"name version\"")
    if problems:
        raise ValueError("; ".join(problems))
    return out


def candidate_mask(galaxy, structure: str, producer) -> Mask | None:
    """The current mask of this source, preferring the survey cutout's grid (the one models read)."""
    masks = Mask.objects.filter(galaxy=galaxy, structure=structure, producer=producer, is_current=True)
    return masks.filter(image__kind=Image.Kind.SURVEY_CUTOUT).first() or masks.first()
