"""Staff-only views behind the admin: PNG renderings of images and masks, and the galaxy viewer's data.

The pixels are made by ``evalcore.pixels.rendering``; these views only fetch, check permissions and
parse the query string (bad values get a 400 naming the parameter).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from evalcore.formats import banddata, pngcodec
from evalcore.pixels import rendering
from evalsite.staff import staff_required
from segmentation.models import Galaxy, Image, Mask, Producer, Structure
from segmentation.selectors.images import image_rgb
from segmentation.selectors.measurements import measurements_for_galaxy
from segmentation.services.masks import mask_counts_fill

COLOUR = "colour"  # the stored RGB picture, unstretched
IMAGE_MODES = (*rendering.STRETCHES, COLOUR)
LUMINANCE = "luminance"  # band choice: the RGB luma even when band data exist
MAX_SIZE = 4096  # px: the most a rendering may be asked for
CACHE_CONTROL = "private, max-age=3600"
PRODUCER_ORDER = [k for k, _ in Producer.Kind.choices]
STRUCTURE_ORDER = [s for s, _ in Structure.choices]


# --- query parsing ----------------------------------------------------------------------------------------
class BadParameter(ValueError):
    pass


def _float_param(request, name: str, default: float) -> float:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a number, got {raw!r}") from None
    if not np.isfinite(value):
        raise BadParameter(f"{name} must be finite, got {raw!r}")
    return value


def _size_param(request) -> int | None:
    raw = request.GET.get("size")
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SIZE:
        raise BadParameter(f"size must be a whole number of px in 1..{MAX_SIZE}, got {raw!r}")
    return int(raw)


def _choice_param(request, name: str, choices, default: str) -> str:
    value = request.GET.get(name) or default
    if value not in choices:
        raise BadParameter(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _png(pixels: np.ndarray, **headers) -> HttpResponse:
    response = HttpResponse(pngcodec.encode(pixels), content_type="image/png")
    response["Cache-Control"] = CACHE_CONTROL
    for key, value in headers.items():
        response[key] = value
    return response


def _bad(exc: Exception) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


# --- band data ---------------------------------------------------------------------------------------------
def image_bands(image: Image) -> tuple[banddata.BandData | None, str]:
    """The image's band data on its grid and a note on where the grey picture comes from."""
    if not image.raw:
        return None, "RGB luminance (no band data stored)"
    try:
        with image.raw.open("rb") as fh:
            bands = banddata.read_band_data(fh.read(), shape=(image.height, image.width))
    except (OSError, banddata.BandDataError) as exc:
        return None, f"RGB luminance (band data unusable: {exc})"
    return bands, f"band data ({', '.join(bands.names)})"


# --- rendering endpoints -----------------------------------------------------------------------------------
@require_GET
@staff_required("segmentation.view_image", login_url="admin:login")
def image_png(request: HttpRequest, pk: int) -> HttpResponse:
    """The image as a PNG. Query: ``stretch`` (linear|asinh|log|colour), ``low``/``high`` clip percentiles,
    ``band`` (mean|luminance|a band name or index), ``size`` (longest side, px; never enlarges)."""
    image = get_object_or_404(Image, pk=pk)
    try:
        mode = _choice_param(request, "stretch", IMAGE_MODES, rendering.DEFAULT_STRETCH)
        low = _float_param(request, "low", rendering.DEFAULT_CLIP[0])
        high = _float_param(request, "high", rendering.DEFAULT_CLIP[1])
        size = _size_param(request)
        band = request.GET.get("band") or "mean"
        rgb = image_rgb(image)
        if mode == COLOUR:
            pixels, source = rgb, "stored RGB"
        else:
            bands, source = (None, "RGB luminance (asked for)") if band == LUMINANCE else image_bands(image)
            pixels = rendering.render_image(rgb=rgb, bands=bands, band=None if bands is None else band,
                                            kind=mode, low_pct=low, high_pct=high)
            if bands is not None:
                source = f"band data: {band}"
        if size:
            pixels = rendering.downscale(pixels, size)
    except (BadParameter, rendering.RenderError, banddata.BandDataError) as exc:
        return _bad(exc)
    return _png(pixels, **{"X-Render-Source": source})


@require_GET
@staff_required("segmentation.view_mask", login_url="admin:login")
def mask_png(request: HttpRequest, pk: int) -> HttpResponse:
    """A mask as an RGBA overlay PNG on its image's grid. Query: ``cmap`` (viridis|cividis|magma),
    ``size`` (longest side, px). A not-asked mask has no pixels: 404 saying so."""
    mask = get_object_or_404(Mask.objects.select_related("producer"), pk=pk)
    if mask.state == Mask.State.NOT_ASKED:
        return HttpResponse(f"mask {mask.pk} was not asked: it has no pixels", status=404,
                            content_type="text/plain; charset=utf-8")
    try:
        cmap = _choice_param(request, "cmap", rendering.COLORMAPS, rendering.COLORMAPS[0])
        size = _size_param(request)
        rgba = rendering.overlay_rgba(mask.fractions(), cmap=cmap)
        if size:
            rgba = rendering.downscale(rgba, size, smooth=False)
    except (BadParameter, rendering.RenderError) as exc:
        return _bad(exc)
    return _png(rgba)


# --- the galaxy viewer (embedded in the galaxy's admin page) ----------------------------------------------
@dataclass
class MaskEntry:
    mask: Mask
    history: int  # earlier (superseded) versions in this slot
    marked_pixels: int = 0
    peak: str = ""  # highest fraction as k/N
    overlay_url: str = ""

    @property
    def selectable(self) -> bool:
        return self.mask.state != Mask.State.NOT_ASKED

    @property
    def parameters_json(self) -> str:
        return json.dumps(self.mask.producer.parameters, indent=2, sort_keys=True, default=str)


@dataclass
class CoverageRow:
    producer: Producer
    cells: list = field(default_factory=list)  # per structure: list of MaskEntry (one per image)


def _mask_sort_key(mask: Mask):
    return (STRUCTURE_ORDER.index(mask.structure), PRODUCER_ORDER.index(mask.producer.kind),
            mask.producer.name, mask.producer.version, mask.image.kind, mask.pk)


def galaxy_viewer_context(galaxy: Galaxy, selected: str | None = None) -> dict:
    """Everything the galaxy page shows: images (with band names), current masks with provenance and
    statistics, the producer x structure coverage table and the initially selected mask."""
    images = list(galaxy.images.all())
    masks = sorted(
        Mask.objects.filter(galaxy=galaxy, is_current=True)
        .select_related("producer", "image", "import_batch", "supersedes"),
        key=_mask_sort_key,
    )
    earlier = Counter(
        Mask.objects.filter(galaxy=galaxy, is_current=False).values_list("image_id", "structure", "producer_id")
    )
    entries = []
    for mask in masks:
        entry = MaskEntry(mask=mask, history=earlier[(mask.image_id, mask.structure, mask.producer_id)])
        if entry.selectable:
            if mask.marked_pixels is None:  # stored before the counts were kept: count once, keep them
                mask_counts_fill(mask=mask)
            entry.marked_pixels = mask.marked_pixels
            entry.peak = f"{mask.peak_numerator}/{mask.denominator}"
            entry.overlay_url = reverse("segmentation:mask-png", args=[mask.pk])
        entries.append(entry)

    image_info = {}
    for image in images:
        bands, source = image_bands(image)
        image_info[str(image.pk)] = {
            "url": reverse("segmentation:image-png", args=[image.pk]) + f"?v={image.content_hash[:12]}",
            "label": f"{image.get_kind_display()} {image.width}x{image.height}",
            "bands": list(bands.names) if bands is not None else [],
            "source": source,
        }

    rows: dict[int, CoverageRow] = {}
    for entry in entries:
        row = rows.setdefault(entry.mask.producer_id, CoverageRow(
            producer=entry.mask.producer, cells=[[] for _ in STRUCTURE_ORDER]))
        row.cells[STRUCTURE_ORDER.index(entry.mask.structure)].append(entry)

    choosable = [e for e in entries if e.selectable]
    chosen = next((e for e in choosable if str(e.mask.pk) == str(selected)), None)
    if chosen is None:
        chosen = next((e for e in choosable if e.mask.state == Mask.State.MARKED), None)
    initial_image = chosen.mask.image if chosen else (images[0] if images else None)
    config = {
        "images": image_info,
        "masks": {str(e.mask.pk): {"url": e.overlay_url, "image": str(e.mask.image_id),
                                   "slot": f"{e.mask.structure}:{e.mask.producer_id}",
                                   "label": _mask_label(e.mask), "denominator": e.mask.denominator}
                  for e in choosable},
        "colormaps": {name: rendering.colormap_stops(name) for name in rendering.COLORMAPS},
    }
    initial_url = overlay_url = ""
    initial_bands: list[str] = []
    if initial_image is not None:
        info = image_info[str(initial_image.pk)]
        initial_bands = info["bands"]
        low, high = rendering.DEFAULT_CLIP
        initial_url = f"{info['url']}&stretch={rendering.DEFAULT_STRETCH}&low={low}&high={high}&band=" + (
            "mean" if initial_bands else LUMINANCE)
    if chosen is not None:
        overlay_url = f"{chosen.overlay_url}?cmap={rendering.COLORMAPS[0]}"
    return {
        "galaxy": galaxy,
        "initial_image_url": initial_url,
        "initial_overlay_url": overlay_url,
        "initial_bands": initial_bands,
        "images": images,
        "entries": entries,
        "coverage": list(rows.values()),
        "structures": Structure.choices,
        "selected": chosen,
        "initial_image": initial_image,
        "initial_image_source": image_info[str(initial_image.pk)]["source"] if initial_image else "",
        "stretches": rendering.STRETCHES,
        "default_stretch": rendering.DEFAULT_STRETCH,
        "default_clip": rendering.DEFAULT_CLIP,
        "colormaps": rendering.COLORMAPS,
        "legend_stops": ", ".join(config["colormaps"][rendering.COLORMAPS[0]]),
        "config": config,
        "measurements": measurements_for_galaxy(galaxy),
    }


def _mask_label(mask: Mask) -> str:
    return f"{mask.get_structure_display()} · {mask.producer.get_kind_display()} · {mask.producer.name} " \
           f"{mask.producer.version}"
