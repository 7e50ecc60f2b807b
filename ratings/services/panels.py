"""The pictures a rater sees, made identically for every source so that nothing but the mask differs.

Every panel of a study is rendered at the same size (``PANEL_SIZE`` px square) as a plain PNG with no
metadata chunks, rendered once and kept in storage (PanelImage); the site serves the bytes itself, so no
storage URL, file name or date reaches a rater.

Displays (``Study.display``; docs/ratings.md "Matched display"):
- ``matched`` (the default): each source's map cut at that source's own marking level
  (``source_levels``), then drawn by one rule on one grid in one colour (``evalcore.pixels.matched``);
- ``matched_soft``: the maps cut at a common level set above a floor, each level drawn by the same rule;
- ``soft``: the raw fraction map in a colormap (it gives the source away: the blinding audit names it);
  ``binary``: every source cut at one ``threshold`` (one drawing rule, but not each source's own claim).

Variants:
- ``mask``: the mask alone on black; ``layer``: the same colours on a transparent background, laid over the
  galaxy picture in the browser (the overlay toggle and opacity slider act on it);
- galaxy pictures: ``colour`` (the RGB as imported) or a grey ``linear``/``asinh``/``log`` stretch.
"""
from __future__ import annotations

import functools

import numpy as np
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image as PILImage

from evalcore import vocabulary
from evalcore.formats import pngcodec
from evalcore.pixels import matched, rendering
from ratings.models import Candidate, PanelImage, Study
from segmentation.models import Image, Mask, Producer
from segmentation.selectors.images import image_rgb

PANEL_SIZE = matched.PANEL_SIZE
COLORMAP = "viridis"
BINARY_COLOUR = matched.MASK_COLOUR  # the top of viridis, so every display shares a palette
MASK_VARIANTS = matched.VARIANTS
IMAGE_VARIANTS = ("colour", "linear", "asinh", "log")
MATCHED_STYLES = (vocabulary.MATCHED, vocabulary.MATCHED_SOFT)
BINARY_SOURCE_LEVEL = 0.5  # a source that marks 0 or 1: any level in (0, 1] keeps its mask as it is


def plain_png(pixels: np.ndarray) -> bytes:
    """PNG with no text, time or other metadata chunks, compact: panels are kept in storage."""
    return matched.encode(pixels)


def _resize(arr: np.ndarray, smooth: bool) -> np.ndarray:
    method = PILImage.Resampling.BILINEAR if smooth else PILImage.Resampling.NEAREST
    return np.asarray(PILImage.fromarray(arr).resize((PANEL_SIZE, PANEL_SIZE), method))


def display_style(study: Study, producer_id: int) -> tuple[str, float]:
    style = study.display_overrides.get(str(producer_id), study.display)
    return style, study.threshold


def source_level(study: Study, producer: Producer, structure: str) -> tuple[float, str]:
    """(level, where it comes from): the fraction at or above which this source's map counts as marked.

    A model version: the threshold stored with its evaluation on the validation split
    (``segmentation.services.sources.model.marking_thresholds``); volunteers: the study's consensus level; any other
    source (arc finder, truth) marks 0 or 1 and is kept as it is."""
    if producer.kind == vocabulary.MODEL:
        from segmentation.models import ModelVersion
        from segmentation.services.sources.model import marking_thresholds

        version = ModelVersion.objects.filter(producer=producer).first()
        if version is not None:
            level, basis = marking_thresholds(version)[structure]
            return float(level), f"model version {version.name}: {basis}"
        return BINARY_SOURCE_LEVEL, "model without a stored version: the volunteers' consensus level"
    if producer.kind == vocabulary.VOLUNTEERS:
        return float(study.consensus_level), "the study's consensus level (share of volunteers)"
    return BINARY_SOURCE_LEVEL, "a binary source: its mask as marked"


def source_levels(study: Study) -> dict[str, dict[str, dict]]:
    """Every source's level per structure, as recorded in the pre-registration:
    {producer id: {"source": name, "kind": kind, structure: {"level": x, "basis": text}}}."""
    if study.display_levels:
        return study.display_levels
    return compute_source_levels(study)


def compute_source_levels(study: Study) -> dict[str, dict[str, dict]]:
    out = {}
    for producer in study.sources.all().order_by("pk"):
        entry = {"source": str(producer), "kind": producer.kind}
        for structure in study.structures:
            level, basis = source_level(study, producer, structure)
            entry[structure] = {"level": level, "basis": basis}
        out[str(producer.pk)] = entry
    return out


def _level(levels: dict, producer_id: int, structure: str) -> float:
    try:
        return float(levels[str(producer_id)][structure]["level"])
    except (KeyError, TypeError, ValueError):
        return BINARY_SOURCE_LEVEL


def shown_fractions(mask: Mask) -> np.ndarray:
    """The fraction map a panel draws: an "asked, nothing marked" mask is blank, even where its source
    kept faint fractions."""
    if mask.state != Mask.State.MARKED:
        return np.zeros((mask.height, mask.width), np.float32)
    return mask.fractions()


def mask_pixels(mask: Mask, style: str, threshold: float, variant: str,
                level: float = BINARY_SOURCE_LEVEL, fractions: np.ndarray | None = None) -> np.ndarray:
    """The panel of one mask; ``level`` is the source's own marking level (matched display). ``fractions``:
    the mask's ``shown_fractions`` when the caller has decoded them already."""
    if fractions is None:
        fractions = shown_fractions(mask)
    if style == vocabulary.MATCHED:
        return matched.matched_pixels(fractions, level, variant)
    if style == vocabulary.MATCHED_SOFT:
        return matched.matched_soft_pixels(fractions, variant)
    return fraction_pixels(fractions, style, threshold, variant)


def fraction_pixels(fractions: np.ndarray, style: str, threshold: float, variant: str) -> np.ndarray:
    """A fraction map (H, W) in [0, 1] drawn as a panel: ``mask`` (RGB on black) or ``layer`` (RGBA).
    Matched styles cut it at ``threshold``; the raw ``soft`` and ``binary`` styles draw it as before."""
    if style == vocabulary.MATCHED:
        return matched.matched_pixels(fractions, threshold, variant)
    if style == vocabulary.MATCHED_SOFT:
        return matched.matched_soft_pixels(fractions, variant)
    if style == Study.Display.BINARY:
        on = fractions >= threshold
        fractions = on.astype(np.float32)
    resized = _resize((fractions * 255).astype(np.uint8), smooth=style != Study.Display.BINARY) / 255.0
    if style == Study.Display.BINARY:
        rgb = np.zeros(resized.shape + (3,), np.uint8)
        rgb[resized >= 0.5] = BINARY_COLOUR
        alpha = np.where(resized >= 0.5, 255, 0).astype(np.uint8)
    else:
        rgba = rendering.overlay_rgba(resized, cmap=COLORMAP)
        rgb, alpha = rgba[..., :3], rgba[..., 3]
    if variant == "mask":
        return np.where(alpha[..., None] > 0, rgb, 0).astype(np.uint8)
    return np.dstack([rgb, alpha]).astype(np.uint8)


def render_mask_panel(candidate: Candidate, variant: str, display: str | None = None,
                      levels: dict | None = None, fractions: np.ndarray | None = None) -> bytes:
    """The bytes of one mask panel, rendered now and not stored. ``display`` replaces the study's display
    (the blinding audit compares displays); ``levels`` are the sources' levels (``source_levels``);
    ``fractions`` the mask's decoded ``shown_fractions``, if the caller has them."""
    study = candidate.item.study
    style, threshold = display_style(study, candidate.producer_id)
    if display is not None:
        style = display
    if levels is None:
        levels = source_levels(study)
    level = _level(levels, candidate.producer_id, candidate.item.structure)
    return plain_png(mask_pixels(candidate.mask, style, threshold, variant, level, fractions))


def blank_png(variant: str) -> bytes:
    """The bytes of a panel with nothing drawn (the same for every source in the matched displays)."""
    return plain_png(matched.blank_pixels(variant))


def is_blank(candidate: Candidate) -> bool:
    """Whether the candidate's panel shows nothing: decided from the stored picture itself, so the
    "Nothing marked" label and the picture always agree."""
    data = candidate_png(candidate, "mask")
    return data == blank_png("mask") or not pngcodec.decode(data).any()


def image_pixels(image: Image, variant: str, rgb: np.ndarray | None = None) -> np.ndarray:
    """The galaxy picture in one stretch; ``rgb``: the image's decoded pixels, if the caller has them."""
    if rgb is None:
        rgb = image_rgb(image)
    if variant == "colour":
        out = rgb
    else:
        out = rendering.render_image(rgb=rgb, kind=variant)
        out = np.repeat(out[..., None], 3, axis=2)
    return _resize(np.ascontiguousarray(out), smooth=True)


def _cached(candidate: Candidate, variant: str, make) -> bytes:
    found = PanelImage.objects.filter(candidate=candidate, variant=variant).first()
    if found is not None:
        with found.file.open("rb") as fh:
            return fh.read()
    data = make()
    try:
        with transaction.atomic():
            render = PanelImage(candidate=candidate, variant=variant)
            render.file.save(f"{candidate.pk}-{variant}.png", ContentFile(data), save=False)
            render.save()
    except IntegrityError:  # another request rendered it at the same time; both are identical
        pass
    return data


def candidate_png(candidate: Candidate, variant: str) -> bytes:
    """The panel picture of one candidate (``mask`` or ``layer``), or its galaxy picture."""
    if variant in MASK_VARIANTS:
        return _cached(candidate, variant, lambda: render_mask_panel(candidate, variant))
    if variant in IMAGE_VARIANTS:
        return _cached(candidate, variant, lambda: plain_png(image_pixels(candidate.mask.image, variant)))
    raise ValueError(f"unknown panel variant {variant!r}")


def image_candidate(cands) -> Candidate:
    """The candidate whose stored galaxy pictures serve the whole item: all candidates of an item lie on
    the same image (``study_check`` refuses anything else), so one copy per item is enough."""
    return min(cands, key=lambda c: c.pk)


def render_study(study: Study, progress=None) -> int:
    """Render every panel of a study ahead of time (done when it opens); returns how many pictures are
    stored. Masks: both variants of every candidate; galaxy pictures: every stretch, once per item. Each
    mask and each image is read and decoded at most once, and not at all when its pictures are stored."""
    cands = list(Candidate.objects.filter(item__study=study)
                 .select_related("mask", "mask__image", "item__study").order_by("item_id", "pk"))
    by_item: dict[int, list[Candidate]] = {}
    for c in cands:
        by_item.setdefault(c.item_id, []).append(c)
    levels = source_levels(study)
    n = 0
    for item_cands in (progress(by_item.values()) if progress else by_item.values()):
        for candidate in item_cands:
            fractions = functools.cache(lambda mask=candidate.mask: shown_fractions(mask))
            for variant in MASK_VARIANTS:
                _cached(candidate, variant, lambda c=candidate, v=variant, f=fractions:
                        render_mask_panel(c, v, levels=levels, fractions=f()))
                n += 1
        first = image_candidate(item_cands)
        rgb = functools.cache(lambda image=first.mask.image: image_rgb(image))
        for variant in IMAGE_VARIANTS:
            _cached(first, variant, lambda image=first.mask.image, v=variant, pixels=rgb:
                    plain_png(image_pixels(image, v, rgb=pixels())))
            n += 1
    return n


# --- reference examples of the quality levels (guide page) ---------------------------------------------
# Built from a synthetic galaxy's true mask (never one of the study's items) and deliberately degraded
# copies, one per level; the degradations are fixed so every rater sees the same examples. The example is
# the galaxy (of the first REFERENCE_POOL outside the study) whose true structure covers most of its frame,
# and the pictures are cropped to the structure with a margin, so the structure is large on the guide page.
REFERENCE_LEVELS = (3, 2, 1, 0)  # Quality values, best first
REFERENCE_POOL = 40  # synthetic galaxies looked at to find the clearest example
FALSE_SHARE = 0.35  # "major errors": the false region's area as a share of the structure's


def _disc(shape, centre, radius) -> np.ndarray:
    y, x = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(y - centre[0], x - centre[1]) <= radius


def degraded(truth: np.ndarray, level: int) -> np.ndarray:
    """The true fraction map (H, W) made as good as quality ``level`` (3 perfect ... 0 failed).

    3: the truth; 2 (minor errors): shifted by 3% of the width and the outer ends trimmed;
    1 (major errors): one half of the structure missed, and a false region a third the structure's size
    marked where the structure is not (the point of the galaxy farthest from it);
    0 (failed): the truth turned by 90 degrees and mirrored, with everything near the true structure removed,
    so it marks only where the structure is not (a bar turned 90 degrees would still cross the bar's centre).
    """
    from scipy import ndimage

    t = np.clip(np.asarray(truth, np.float32), 0, 1)
    h, w = t.shape
    y, x = np.mgrid[:h, :w]
    r = np.hypot(y - (h - 1) / 2, x - (w - 1) / 2)
    on = t > 0
    reach = r[on].max() if on.any() else r.max()
    if level == 3:
        return t
    if level == 2:
        return np.roll(t, max(1, round(0.03 * w)), axis=1) * (r < 0.8 * reach)
    if level == 1:
        out = np.where(x < w / 2, t, 0).astype(np.float32)
        if on.any():
            # the farthest point from the structure, inside the galaxy (the structure's reach)
            distance = ndimage.distance_transform_edt(~on) * (r < reach)
            centre = np.unravel_index(int(np.argmax(distance)), distance.shape)
            radius = min(np.sqrt(FALSE_SHARE * on.sum() / np.pi), max(distance.max() - 1, 1))
            out = np.maximum(out, _disc(t.shape, centre, radius).astype(np.float32))
        return out
    if level == 0:
        turned = np.flipud(np.rot90(t))
        if turned.shape != t.shape:  # a non-square frame: mirror instead of turning
            turned = np.fliplr(np.flipud(t))
        near = ndimage.binary_dilation(on, iterations=max(1, round(0.04 * min(h, w))))
        return np.where(near, 0, turned).astype(np.float32)
    raise ValueError(f"unknown quality level {level!r}")


def reference_mask(study: Study, structure: str) -> Mask | None:
    """The clearest true mask of a synthetic galaxy that is not in the study, for one structure: of the first
    REFERENCE_POOL candidates, the one whose marked area is the largest share of its frame."""
    used = study.items.values_list("galaxy_id", flat=True)
    found = list(Mask.objects.filter(producer__kind="truth", structure=structure, is_current=True,
                                     state=Mask.State.MARKED, galaxy__synthetic=True)
                 .exclude(galaxy_id__in=used).select_related("image").order_by("galaxy_id", "pk")[:REFERENCE_POOL])
    if not found:
        return None
    return max(found, key=lambda m: (float((m.fractions() > 0).mean()), -m.galaxy_id))


def reference_box(truth: np.ndarray, margin: float = 0.25, smallest: float = 0.45) -> tuple[float, ...]:
    """The square part of the frame (top, left, bottom, right as fractions) around the structure, with a
    margin, at least ``smallest`` of the frame wide and centred on the galaxy, so the structure is large."""
    on = np.asarray(truth) > 0
    h, w = on.shape
    if not on.any():
        return 0.0, 0.0, 1.0, 1.0
    ys, xs = np.nonzero(on)
    # symmetric about the frame's centre (the galaxy), so the galaxy stays in the middle
    half = max(abs(ys - (h - 1) / 2).max() / h, abs(xs - (w - 1) / 2).max() / w) * (1 + margin) + 1 / min(h, w)
    half = min(max(half, smallest / 2), 0.5)
    return 0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half


def _crop(arr: np.ndarray, box) -> np.ndarray:
    h, w = arr.shape[:2]
    top, left, bottom, right = box
    return np.ascontiguousarray(arr[int(round(top * h)):max(int(round(bottom * h)), int(round(top * h)) + 1),
                                    int(round(left * w)):max(int(round(right * w)), int(round(left * w)) + 1)])


def reference_png(study: Study, structure: str, level: int, variant: str) -> bytes:
    """One reference picture: ``image`` (the galaxy), ``mask`` or ``layer`` of the level's example, cropped
    to the structure (``reference_box``)."""
    mask = reference_mask(study, structure)
    if mask is None:
        raise LookupError(f"no synthetic galaxy with a true {structure} mask outside the study")
    truth = mask.fractions()
    box = reference_box(truth)
    if variant == "image":
        return plain_png(_resize(_crop(image_rgb(mask.image), box), smooth=True))
    if variant not in MASK_VARIANTS:
        raise ValueError(f"unknown reference variant {variant!r}")
    threshold = study.threshold if study.display == Study.Display.BINARY else BINARY_SOURCE_LEVEL
    example = _crop(degraded(truth, level), box)
    return plain_png(fraction_pixels(example, study.display, threshold, variant))
