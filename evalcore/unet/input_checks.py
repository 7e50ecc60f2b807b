"""What sets an image apart from a model's training data: bands, pixel scale, size, aspect ratio (no Django).

A :class:`TrainingProfile` summarises the images a model version learned from (its training split);
:func:`differences` lists, for one image, each way it lies outside that profile, in words an astronomer
reads at a glance ("bands r (one band, shown grey): the model learned from grz colour composites"). A model
applied to such images may still work, or fail silently: the differences are warnings, not refusals.

Thresholds: a pixel scale counts as different beyond 20 % outside the training's range; a size when the
shorter side is under half the training's smallest or the longer over twice its largest; an aspect ratio
(width / height) beyond 0.02 outside the training's range (non-square images are padded to a square for
the network, never stretched).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCALE_TOLERANCE = 1.2
SIZE_FACTOR = 2.0
ASPECT_TOLERANCE = 0.02
KINDS = ("bands", "pixel scale", "size", "aspect ratio")


@dataclass(frozen=True)
class ImageFacts:
    width: int                   # px
    height: int                  # px
    pixel_scale: float | None    # arcsec/px, None when unknown
    bands: str                   # how the picture was made, e.g. "grz asinh (Legacy Survey)", "r asinh (...)", "RGB"

    @property
    def band_set(self) -> str:
        return band_set(self.bands)

    @property
    def aspect(self) -> float:
        return self.width / self.height


def band_set(label: str) -> str:
    """The bands part of an image's label: "grz asinh (Legacy Survey)" -> "grz", "r asinh (...)" -> "r",
    "RGB (GZ3D subject JPEG)" -> "RGB"; an empty label -> "unknown"."""
    text = (label or "").strip()
    if not text:
        return "unknown"
    return text.split(" asinh")[0].split(" (")[0].strip() or "unknown"


def describe_bands(key: str) -> str:
    """Words for a band set."""
    if key in ("RGB", "unknown") or key.startswith("RGB "):
        return "a colour picture without band data" if key != "unknown" else "unknown bands"
    if key in ("grey", "single band") or (key.isalpha() and len(key) == 1):
        return f"{key} (one band, shown grey)"
    if key.isalpha():
        return f"{key} colour composites"
    return key


@dataclass
class TrainingProfile:
    """The training images of a model version, summarised."""

    n_images: int
    band_sets: dict[str, int] = field(default_factory=dict)   # band set -> number of images
    pixel_scale: tuple[float, float] | None = None             # arcsec/px (min, max) over images that know it
    short_side: tuple[int, int] = (0, 0)                       # px (min, max) of min(width, height)
    long_side: tuple[int, int] = (0, 0)                        # px (min, max) of max(width, height)
    aspect: tuple[float, float] = (1.0, 1.0)                   # width / height (min, max)

    @classmethod
    def from_facts(cls, facts: list[ImageFacts]) -> TrainingProfile:
        if not facts:
            return cls(n_images=0)
        bands: dict[str, int] = {}
        for f in facts:
            bands[f.band_set] = bands.get(f.band_set, 0) + 1
        scales = [f.pixel_scale for f in facts if f.pixel_scale]
        shorts = [min(f.width, f.height) for f in facts]
        longs = [max(f.width, f.height) for f in facts]
        aspects = [f.aspect for f in facts]
        return cls(n_images=len(facts), band_sets=dict(sorted(bands.items(), key=lambda kv: -kv[1])),
                   pixel_scale=(min(scales), max(scales)) if scales else None,
                   short_side=(min(shorts), max(shorts)), long_side=(min(longs), max(longs)),
                   aspect=(min(aspects), max(aspects)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingProfile:
        def pair(v):
            return tuple(v) if v is not None else None

        return cls(n_images=int(data.get("n_images", 0)), band_sets=dict(data.get("band_sets") or {}),
                   pixel_scale=pair(data.get("pixel_scale")), short_side=pair(data.get("short_side")) or (0, 0),
                   long_side=pair(data.get("long_side")) or (0, 0), aspect=pair(data.get("aspect")) or (1.0, 1.0))

    def summary(self) -> str:
        """One line: what the model learned from."""
        if not self.n_images:
            return "no training images known"
        bands = ", ".join(f"{describe_bands(k)} ({n})" for k, n in self.band_sets.items())
        scale = (f'{_range(self.pixel_scale, "{:.3g}")}"/px' if self.pixel_scale else "pixel scale unknown")
        return (f"{self.n_images} training images: {bands}; {scale}; "
                f"{_range((self.short_side[0], self.long_side[1]), '{:d}')} px a side; "
                f"aspect ratio {_range(self.aspect, '{:.2f}')}")


def _range(pair, fmt: str) -> str:
    lo, hi = pair
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}-{fmt.format(hi)}"


def differences(image: ImageFacts, profile: TrainingProfile) -> list[tuple[str, str]]:
    """(kind, words) for each way ``image`` lies outside ``profile``; kinds are those of KINDS.
    Nothing is compared against an empty profile."""
    if not profile.n_images:
        return []
    out = []
    if image.band_set not in profile.band_sets:
        learned = ", ".join(describe_bands(k) for k in profile.band_sets)
        out.append(("bands", f"bands {describe_bands(image.band_set)}: the model learned from {learned}"))
    if profile.pixel_scale is not None:
        lo, hi = profile.pixel_scale
        learned = f'{_range(profile.pixel_scale, "{:.3g}")}"/px'
        if image.pixel_scale is None:
            out.append(("pixel scale", f"pixel scale unknown: the model learned at {learned}"))
        elif not lo / SCALE_TOLERANCE <= image.pixel_scale <= hi * SCALE_TOLERANCE:
            out.append(("pixel scale", f'pixel scale {image.pixel_scale:.3g}"/px: the model learned at {learned}'))
    short, long_ = min(image.width, image.height), max(image.width, image.height)
    if short < profile.short_side[0] / SIZE_FACTOR or long_ > profile.long_side[1] * SIZE_FACTOR:
        out.append(("size", f"{image.width}x{image.height} px: the model learned from "
                            f"{_range((profile.short_side[0], profile.long_side[1]), '{:d}')} px a side"))
    lo, hi = profile.aspect
    if not lo - ASPECT_TOLERANCE <= image.aspect <= hi + ASPECT_TOLERANCE:
        learned = "square images" if lo == hi == 1.0 else f"aspect ratios {_range(profile.aspect, '{:.2f}')}"
        out.append(("aspect ratio", f"aspect ratio {image.aspect:.2f} ({image.width}x{image.height} px): the "
                                    f"model learned from {learned}; padded to a square, not stretched"))
    return out
