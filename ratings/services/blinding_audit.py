"""The machine blinding audit of a study (docs/ratings.md "Blinding audit").

Collects exactly what raters receive for every panel of the study's real items - both mask pictures
(``mask`` and ``layer``) and the panel's HTML fragment, rendered by the item page's own template - and hands
them to ``evalcore.study.blinding_audit``, which trains a classifier to name the source from presentation
features (and, separately, from content features).

An open study's panels are the stored pictures raters are served; a draft's are rendered now, exactly as
they will be stored when it opens (rendering is deterministic). The result is kept on the study with a
fingerprint of everything it depends on, so the pre-opening check reuses it until the design changes, and
it is frozen with the pre-registration when the study opens.
"""
from __future__ import annotations

import hashlib
import json

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from evalcore import vocabulary
from evalcore.study import blinding_audit as core
from ratings.models import Candidate, Item, Study
from ratings.services import panels

MIN_GALAXIES = 10  # fewer galaxies cannot support a grouped cross-validation worth reporting
DISPLAYS = (vocabulary.MATCHED, vocabulary.MATCHED_SOFT, vocabulary.RAW_SOFT, vocabulary.ONE_THRESHOLD)


def audited_candidates(study: Study) -> list[Candidate]:
    """The panels raters rate: every candidate of a real item whose source was asked (not decoys)."""
    return list(Candidate.objects.filter(item__study=study, item__kind=Item.Kind.REAL, is_decoy=False)
                .exclude(mask__state=vocabulary.NOT_ASKED)
                .select_related("mask", "mask__image", "producer", "item__study", "item__galaxy")
                .order_by("item_id", "pk"))


def panel_fragment(blank: bool, n_panels: int) -> str:
    """A panel's HTML as the item page serves it (the same template), with placeholder tokens."""
    def picture(name):
        return reverse("ratings:item-png", kwargs={"token": "TOKEN", "name": name})

    p = {"index": 0, "letter": "A", "mask_url": picture("p0-mask"), "layer_url": picture("p0-layer"),
         "rank": None, "quality": None, "empty": blank}
    return render_to_string("ratings/_panel.html", {
        "p": p, "ranks": range(1, n_panels + 1), "qualities": vocabulary.QUALITY_KEYS,
        "image_url": picture("image-colour").removesuffix("colour.png")})


def fingerprint(study: Study, display: str | None = None) -> str:
    rows = audited_candidates(study)
    key = {"display": display or study.display, "overrides": study.display_overrides, "threshold": study.threshold,
           "levels": panels.source_levels(study) if study.state != Study.State.DRAFT
           else panels.compute_source_levels(study),
           "panels": [(c.pk, c.producer_id, c.mask.content_hash, c.mask.state) for c in rows],
           "state": study.state == Study.State.DRAFT}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


def collect(study: Study, display: str | None = None) -> list[core.Panel]:
    """Every audited panel's bytes. ``display`` renders another display instead of the study's own."""
    cands = audited_candidates(study)
    n_panels = max(1, study.sources.count())
    levels = (panels.source_levels(study) if study.state != Study.State.DRAFT
              else panels.compute_source_levels(study))
    served = study.state != Study.State.DRAFT and display is None
    out = []
    for c in cands:
        pictures = {v: (panels.candidate_png(c, v) if served else panels.render_mask_panel(c, v, display, levels))
                    for v in panels.MASK_VARIANTS}
        blank = not core.decode(pictures["mask"]).any()
        out.append(core.Panel(source=c.producer.kind, galaxy=str(c.item.galaxy_id), pictures=pictures,
                              fragment=panel_fragment(blank, n_panels), structure=c.item.structure))
    return out


def run(study: Study, display: str | None = None, *, seed: int = 0, n_boot: int = core.N_BOOT) -> dict:
    """The audit of a study's panels (or of another ``display`` of the same masks), as a JSON-able dict."""
    display = display or study.display
    cands = audited_candidates(study)
    galaxies = {c.item.galaxy_id for c in cands}
    result = {"display": display, "at": timezone.now().isoformat(timespec="seconds"),
              "galaxies": len(galaxies), "panels": len(cands)}
    if len(galaxies) < MIN_GALAXIES or len({c.producer_id for c in cands}) < 2:
        result.update(audited=False, verdict=f"not audited: {len(galaxies)} galaxies (at least {MIN_GALAXIES} "
                      "are needed for a grouped cross-validation)")
        return result
    result.update(core.audit(collect(study, None if display == study.display else display), seed=seed,
                             n_boot=n_boot))
    result.update(audited=True, verdict=core.verdict(result))
    return result


def study_audit(study: Study, *, refresh: bool = False) -> dict:
    """The audit of the study's own display, reused while nothing it depends on changed."""
    key = fingerprint(study)
    kept = study.blinding_audit or {}
    if not refresh and kept.get("fingerprint") == key:
        return kept
    if study.state != Study.State.DRAFT and kept.get("frozen"):
        return kept  # frozen with the pre-registration
    result = run(study)
    result["fingerprint"] = key
    Study.objects.filter(pk=study.pk).update(blinding_audit=result)
    study.blinding_audit = result
    return result


def leaks(result: dict) -> bool:
    """Whether the presentation audit's 95% interval lies above chance."""
    return bool(result.get("audited") and (result.get("presentation") or {}).get("above_chance"))


def report_lines(result: dict) -> list[str]:
    """The audit for people, one line each (the command prints them; the check page shows them)."""
    lines = [f"display: {result.get('display')}; {result.get('panels')} panels of {result.get('galaxies')} galaxies",
             f"presentation: {result.get('verdict')}"]
    if not result.get("audited"):
        return lines
    p, c = result["presentation"], result["content"]
    if p.get("leaking"):
        lines.append("  features that leak most: " + ", ".join(f"{f} ({v:.2f})" for f, v in p["leaking"]))
    lines.append(f"how the masks differ in content (what raters judge): a classifier on marked area, pieces, edge "
                 f"roughness and size names the source of {100 * c['accuracy']:.0f}% "
                 f"(95% interval {100 * c['low']:.0f}-{100 * c['high']:.0f}%; chance {100 * c['chance']:.0f}%)")
    for source, means in sorted(result.get("content_means", {}).items()):
        lines.append(f"  {source}: marked {100 * means['marked_share']:.1f}% of the panel, "
                     f"{means['pieces']:.1f} pieces, edge roughness {means['edge_roughness']:.1f}, "
                     f"blank {100 * means['blank']:.0f}%")
    return lines


def level_lines(levels: dict, structures) -> list[str]:
    """Each source's marking level per structure, one line per source."""
    out = []
    for entry in levels.values():
        parts = [f"{s} {entry[s]['level']:g} ({entry[s]['basis']})" for s in structures if s in entry]
        out.append(f"{entry.get('source')}: " + "; ".join(parts))
    return out
