"""What the galaxy page shows (the viewer embedded in the galaxy's admin page): images with their band names,
current masks with provenance and statistics, the producer x structure coverage table, measurements."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from django.urls import reverse

from evalcore.pixels import rendering
from segmentation.models import Galaxy, Mask, Producer, Structure
from segmentation.selectors.images import LUMINANCE, image_band_source
from segmentation.selectors.measurements import measurements_for_galaxy

PRODUCER_ORDER = [k for k, _ in Producer.Kind.choices]
STRUCTURE_ORDER = [s for s, _ in Structure.choices]


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
    statistics, the producer x structure coverage table and the initially selected mask. Masks stored
    before their counts were kept show none until ``services.masks.galaxy_mask_counts_fill`` counted them."""
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
            entry.marked_pixels = mask.marked_pixels
            entry.peak = f"{mask.peak_numerator}/{mask.denominator}"
            entry.overlay_url = reverse("segmentation:mask-png", args=[mask.pk])
        entries.append(entry)

    image_info = {}
    for image in images:
        bands, source = image_band_source(image)
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
