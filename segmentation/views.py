"""Staff-only views behind the admin: PNG renderings of images and masks, and the galaxy viewer's data.

The pixels are made by ``evalcore.pixels.rendering``; these views only fetch, check permissions and
parse the query string (bad values get a 400 naming the parameter).
"""
from __future__ import annotations

import numpy as np
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from evalcore.formats import banddata, pngcodec
from evalcore.pixels import rendering
from evalsite.staff import staff_required
from segmentation.models import Image, Mask
from segmentation.selectors.images import LUMINANCE, image_band_source, image_rgb

COLOUR = "colour"  # the stored RGB picture, unstretched
IMAGE_MODES = (*rendering.STRETCHES, COLOUR)
MAX_SIZE = 4096  # px: the most a rendering may be asked for
CACHE_CONTROL = "private, max-age=3600"


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
            bands, source = (None, "RGB luminance (asked for)") if band == LUMINANCE else image_band_source(image)
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
