"""Admin page comparing model versions side by side: metrics, reliability curves, example galaxies.

The ModelVersion admin's list and actions live in ``admin_runs``; this module registers it with the
comparison page added (imported from ``apps.ready()``): a URL
``admin:segmentation_modelversion_compare``, a link above the version list, and an action "Compare the
selected versions". Data come from ``ModelVersion.metrics`` (``evaluate_version`` fills them);
example masks are the version's stored masks, or predicted when the page is drawn if there are none.
"""
from __future__ import annotations

import base64

import numpy as np
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from evalcore.formats import pngcodec
from evalcore.pixels import rendering
from evalcore.unet.manifest import NOT_ASKED
from evalcore.vocabulary import STRUCTURES
from segmentation.admin_runs import ModelVersionAdmin
from segmentation.models import Mask, ModelVersion
from segmentation.selectors.images import image_rgb
from segmentation.selectors.model_versions import version_manifest
from segmentation.services.model_versions import (
    manifest_labels,
    summary_rows,
    version_predictor,
    volunteer_masks_by_hash,
)

# Okabe-Ito: colour-blind safe, one per compared version (the first is the volunteers' in examples)
COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
SPIRAL_RGB = np.array([0, 114, 178], np.float32)
BAR_RGB = np.array([230, 159, 0], np.float32)
MAX_VERSIONS = 6
N_EXAMPLES = 3
THUMB_PX = 128


def reliability_svg(curves: list[dict], *, title: str, size: int = 260) -> str:
    """Reliability curves (mean observed volunteer fraction against mean predicted fraction, per bin) of
    several versions on one inline SVG, with the diagonal of perfect calibration. ``curves``: dicts with
    label, colour, mean_predicted, mean_observed (lists, None for empty bins)."""
    pad = 34
    span = size - 2 * pad

    def xy(p, o):
        return pad + p * span, size - pad - o * span

    parts = [
        f'<svg class="sg-reliability" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
        f'aria-label="reliability curve, {title}">',
        f'<text x="{size / 2}" y="14" font-size="12" text-anchor="middle">{title}</text>',
        f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#bbb" stroke-dasharray="4 3"/>',
        f'<text x="{size / 2}" y="{size - 8}" font-size="11" text-anchor="middle">predicted fraction</text>',
        f'<text x="10" y="{size / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 10 {size / 2})">observed (volunteers)</text>',
        f'<text x="{pad}" y="{size - pad + 12}" font-size="10">0</text>',
        f'<text x="{size - pad}" y="{size - pad + 12}" font-size="10" text-anchor="end">1</text>',
    ]
    for i, c in enumerate(curves):
        pts = [xy(p, o) for p, o in zip(c["mean_predicted"], c["mean_observed"]) if p is not None and o is not None]
        if not pts:
            continue
        parts.append(f'<polyline fill="none" stroke="{c["colour"]}" stroke-width="2" '
                     f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{c["colour"]}"/>' for x, y in pts)
        label = str(c["label"]).replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f'<text x="{pad + 4}" y="{pad + 12 + 12 * i}" font-size="10" fill="{c["colour"]}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def overlay(rgb: np.ndarray, spiral: np.ndarray | None, bar: np.ndarray | None) -> np.ndarray:
    """The image with spiral (blue) and bar (orange) fractions blended in, opacity 0.75 x fraction."""
    out = rgb.astype(np.float32)
    for plane, colour in ((spiral, SPIRAL_RGB), (bar, BAR_RGB)):
        if plane is not None:
            a = 0.75 * np.clip(np.asarray(plane, np.float32), 0, 1)[..., None]
            out = out * (1 - a) + colour * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def png_data_uri(pixels: np.ndarray) -> str:
    small = rendering.downscale(pixels, THUMB_PX)
    return "data:image/png;base64," + base64.b64encode(pngcodec.encode(small)).decode()


def _version_row(version: ModelVersion, colour: str) -> dict:
    evaluation = version.metrics.get("evaluation")
    cfg = version.config
    best = version.metrics.get("best_val_loss")
    return {
        "version": version, "colour": colour, "evaluation": evaluation,
        "rows": {(st, q): v for st, q, v in summary_rows(evaluation)} if evaluation else {},
        "config": ", ".join(f"{k} {cfg[k]}" for k in ("encoder", "image_size", "field_of_view", "loss", "epochs",
                                                            "batch_size") if k in cfg),
        "best_val_loss": f"{best:.4f}" if isinstance(best, float) else "—",
        "best_epoch": version.metrics.get("best_epoch"),
        "imported": version.metrics.get("imported"),
        "source": ("imported from " + version.metrics["imported"].get("from_file", "a file")
                   if version.metrics.get("imported") else
                   f"training run #{version.training_run_id}" if version.training_run_id else "—"),
    }


def metric_table(rows: list[dict]) -> list[dict]:
    """One line per (structure, quantity) reported by any version, with each version's value or "—"."""
    keys: list[tuple[str, str]] = []
    for r in rows:
        keys.extend(k for k in r["rows"] if k not in keys)
    return [{"structure": st, "quantity": q, "values": [r["rows"].get((st, q), "—") for r in rows]} for st, q in keys]


def _examples(versions: list[ModelVersion]) -> list[dict]:
    """A few galaxies of the first version's test split that are stored here, each with its image, the
    volunteers' maps it learned from and every version's maps on the same image."""
    entries = [e for e in version_manifest(versions[0])["galaxies"] if e["split"] == "test"]
    # galaxies with a drawn spiral first: they show the differences between versions best
    not_asked = NOT_ASKED
    entries.sort(key=lambda e: (e["masks"].get("spiral", not_asked) == not_asked, e["name"]))
    found = volunteer_masks_by_hash(entries[: 4 * N_EXAMPLES])
    chosen = []
    for e in entries[: 4 * N_EXAMPLES]:
        image, masks, _ = manifest_labels(e, found)
        if image is not None:
            chosen.append((e, image, masks))
        if len(chosen) == N_EXAMPLES:
            break
    predictors: dict[int, object] = {}
    examples = []
    for e, image, masks in chosen:
        try:
            rgb = image_rgb(image)
        except (OSError, ValueError) as exc:
            examples.append({"name": e["name"], "error": f"image unreadable: {exc}"})
            continue
        vol = {s: (m.fractions() if m is not None else None) for s, m in masks.items()}
        cells = []
        for v in versions:
            stored = {m.structure: m for m in Mask.objects.filter(image=image, producer=v.producer, is_current=True)}
            if all(s in stored for s in STRUCTURES):
                maps, how = [stored[s].fractions() for s in STRUCTURES], "stored masks"
            else:
                if v.pk not in predictors:
                    # fp32: the page must not wait for int8 calibration; masks differ by <= 0.02 (p99)
                    predictors[v.pk] = version_predictor(v, mode="fp32")
                maps, how = predictors[v.pk].predict_one(rgb), "predicted now (fp32), not stored"
            cells.append({"src": png_data_uri(overlay(rgb, maps[0], maps[1])), "how": how})
        examples.append({"name": e["name"], "image": png_data_uri(rgb),
                         "volunteers": png_data_uri(overlay(rgb, vol["spiral"], vol["bar"])), "cells": cells})
    return examples


class CompareVersionsMixin:
    """Adds the comparison page to the ModelVersion admin."""

    change_list_template = "admin/segmentation/models/change_list.html"

    def get_urls(self):
        return [
            path("compare/", self.admin_site.admin_view(self.compare_view), name="segmentation_modelversion_compare"),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_view_permission(request):
            actions["compare"] = (CompareVersionsMixin.compare, "compare", "Compare the selected versions")
        return actions

    def compare(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True)[:MAX_VERSIONS])
        return HttpResponseRedirect(reverse("admin:segmentation_modelversion_compare") + "?"
                                    + urlencode([("v", i) for i in ids]))

    def compare_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied("viewing model versions needs the view permission")
        raw = request.GET.getlist("v")
        try:
            ids = [int(v) for v in raw]
        except ValueError:
            return HttpResponseBadRequest(f"version ids are whole numbers, got {', '.join(raw)!r}")
        if len(ids) > MAX_VERSIONS:
            return HttpResponseBadRequest(f"compare at most {MAX_VERSIONS} versions at once, got {len(ids)}")
        if ids:
            by_id = ModelVersion.objects.select_related("producer").in_bulk(ids)
            missing = [i for i in ids if i not in by_id]
            if missing:
                return HttpResponseBadRequest(f"no model version with id {', '.join(map(str, missing))}")
            versions = [by_id[i] for i in dict.fromkeys(ids)]
        else:  # the active version and the most recent others
            versions = list(ModelVersion.objects.select_related("producer").order_by("-is_active", "-created_at")[:3])
        rows = [_version_row(v, COLOURS[i % len(COLOURS)]) for i, v in enumerate(versions)]
        plots = []
        for st in STRUCTURES:
            curves = [{"label": r["version"].name, "colour": r["colour"],
                       **r["evaluation"]["structures"][st]["calibration"]}
                      for r in rows if r["evaluation"] and r["evaluation"]["structures"].get(st, {}).get("calibration")]
            plots.append({"structure": st, "svg": reliability_svg(curves, title=st) if curves else ""})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Compare model versions",
            "rows": rows,
            "table": metric_table(rows),
            "plots": plots,
            "examples": _examples(versions) if versions else [],
            "all_versions": ModelVersion.objects.order_by("-created_at"),
            "selected": {v.pk for v in versions},
        }
        return TemplateResponse(request, "admin/segmentation/models/compare.html", context)


@admin.register(ModelVersion)
class ModelVersionCompareAdmin(CompareVersionsMixin, ModelVersionAdmin):
    """The model-version admin of ``admin_runs`` with the comparison page added."""
