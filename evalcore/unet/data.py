"""Training samples, the one preprocessing shared by training and inference, and the dataset (no Django).

A sample is an RGB image (H, W, 3) uint8 plus, per structure, a vote-fraction map (H, W) in [0, 1] on
the image's grid, or None when that structure was NOT ASKED for this galaxy. A map that was asked but
where nobody marked anything is all zeros ("empty"); whether it teaches "none here" is a config choice.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from evalcore.unet.augment import augment as augment_item
from evalcore.unet.model import STRUCTURES, UNetConfig

NOT_ASKED, EMPTY, MARKED = "not_asked", "empty", "marked"  # same words as segmentation.models.Mask.State
NORM_PERCENTILES = (1.0, 99.5)  # input_norm "percentile": the pixel values mapped to 0 and 1
NORM_SAMPLE = 16384  # pixels (all channels) the percentiles are taken from


@dataclass
class Sample:
    """One galaxy for training or evaluation. Maps are fractions on the image's pixel grid."""

    image: np.ndarray
    spiral: np.ndarray | None = None
    bar: np.ndarray | None = None
    key: str = ""

    def __post_init__(self):
        self.image = check_image(self.image, self.key)
        for structure in STRUCTURES:
            m = getattr(self, structure)
            if m is None:
                continue
            m = np.asarray(m, dtype=np.float32)
            where = f" of sample {self.key!r}" if self.key else ""
            if m.shape != self.image.shape[:2]:
                raise ValueError(f"{structure} map{where} has shape {m.shape}, image is {self.image.shape[:2]}")
            if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
                raise ValueError(f"{structure} map{where} must hold finite fractions in [0, 1]")
            setattr(self, structure, m)

    def target(self, structure: str) -> np.ndarray | None:
        if structure not in STRUCTURES:
            raise ValueError(f"unknown structure {structure!r}; known: {STRUCTURES}")
        return getattr(self, structure)

    def state(self, structure: str) -> str:
        """NOT_ASKED, EMPTY (asked, nothing marked) or MARKED."""
        m = self.target(structure)
        if m is None:
            return NOT_ASKED
        return MARKED if bool(np.any(m > 0)) else EMPTY


def check_image(image: np.ndarray, key: str = "") -> np.ndarray:
    """An (H, W, 3) uint8 RGB image; a single-band image ((H, W) or (H, W, 1) uint8) is fed as grey to all
    three channels (the network always sees three; training's greyscale augmentation teaches it such images)."""
    arr = np.asarray(image)
    where = f" (sample {key!r})" if key else ""
    if arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1)):
        arr = np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"an image must be (H, W, 3) uint8 RGB or (H, W) uint8 single band{where}, "
                         f"got {arr.dtype} {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"an image must be at least 2x2 px{where}, got {arr.shape[:2]}")
    return arr


def loss_weights(sample: Sample, config: UNetConfig) -> np.ndarray:
    """Per structure, 1 if the map takes part in the loss, else 0: never when not asked; when asked but
    empty only if the config says empty maps teach "none here"."""
    teach_empty = {"spiral": config.empty_spiral_teaches_no_spiral, "bar": config.empty_bar_teaches_no_bar}
    w = np.zeros(len(STRUCTURES), np.float32)
    for i, structure in enumerate(STRUCTURES):
        state = sample.state(structure)
        w[i] = 1.0 if state == MARKED or (state == EMPTY and teach_empty[structure]) else 0.0
    return w


# --- the one preprocessing ---------------------------------------------------------------------------------
def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, *size), bilinear, antialiased when shrinking."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrinking = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def square_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) px of an (height, width) region centred in the smallest square holding it."""
    side = max(height, width)
    return (side - height) // 2, (side - width) // 2, side


def _pad_square(t: torch.Tensor, fill: torch.Tensor | float) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, S, S), S = max(H, W), the region centred, the rest ``fill`` ((N, C) or a number).
    Non-square images are padded, never stretched: the network sees every galaxy at its own shape."""
    n, c, h, w = t.shape
    if h == w:
        return t
    top, left, side = square_box(h, w)
    out = torch.empty((n, c, side, side), dtype=t.dtype)
    out[...] = fill[..., None, None] if isinstance(fill, torch.Tensor) else fill
    out[..., top:top + h, left:left + w] = t
    return out


def _border_median(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C): the median of each image's frame-edge pixels, its sky, to pad with."""
    edge = torch.cat([t[..., 0, :], t[..., -1, :], t[..., :, 0], t[..., :, -1]], dim=-1)
    return edge.float().median(dim=-1).values.to(t.dtype)


def field_box(shape: tuple[int, ...], field_of_view: float) -> tuple[slice, slice]:
    """The centred part of an (H, W[, ...]) frame the network sees: ``field_of_view`` of each side (at least
    2 px), as (row slice, column slice)."""
    out = []
    for n in (int(shape[0]), int(shape[1])):
        keep = min(n, max(2, round(n * field_of_view)))
        start = (n - keep) // 2
        out.append(slice(start, start + keep))
    return out[0], out[1]


def preprocess(image_rgb: np.ndarray, config: UNetConfig) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, S, S) float32 in [0, 1], S = config.image_size px: the field of view (the
    centred ``config.field_of_view`` of the frame; all of it by default), padded to a square with the
    median colour of its edge when it is not one (never stretched; ``postprocess`` undoes it exactly),
    resized, scaled to [0, 1] (``normalise``: by 255, or between the image's own percentiles). Training and
    inference both call this."""
    arr = check_image(image_rgb)
    rows, cols = field_box(arr.shape, config.field_of_view)
    # Resize the uint8 pixels (torch's uint8 path is several times faster than float; values differ
    # by at most 1/255), then scale to [0, 1].
    t = torch.from_numpy(np.ascontiguousarray(arr[rows, cols])).permute(2, 0, 1)[None]
    t = _pad_square(t, _border_median(t))
    size = (config.image_size, config.image_size)
    return normalise(_resize(t, size).float(), config)[0]


def normalise(t: torch.Tensor, config: UNetConfig) -> torch.Tensor:
    """(B, 3, S, S) float pixels in 0..255 -> [0, 1]. ``config.input_norm`` "none": divided by 255;
    "percentile": each image stretched linearly between its own ``NORM_PERCENTILES`` (all channels together,
    so colours keep their ratios); an image with (almost) no range is divided by 255 only."""
    if config.input_norm == "none":
        return (t / 255.0).clamp_(0.0, 1.0)
    flat = t.flatten(1)
    # the percentiles of an evenly strided sample of at most ~NORM_SAMPLE pixels: a sort of the whole image
    # would cost as much as the rest of preprocessing, and the sample's percentiles differ from the image's by
    # far less than one grey level
    flat = flat[:, ::max(1, flat.shape[1] // NORM_SAMPLE)]
    q = torch.quantile(flat, torch.tensor(NORM_PERCENTILES, dtype=flat.dtype) / 100.0, dim=1)  # (2, B)
    lo, hi = q[0][:, None, None, None], q[1][:, None, None, None]
    flat_range = (hi - lo) < 1.0
    lo = torch.where(flat_range, torch.zeros_like(lo), lo)
    hi = torch.where(flat_range, torch.full_like(hi, 255.0), hi)
    return ((t - lo) / (hi - lo)).clamp_(0.0, 1.0)


def preprocess_batch(images: Sequence[np.ndarray], config: UNetConfig) -> torch.Tensor:
    """``preprocess`` of several images as one (B, 3, S, S) tensor, identical to stacking ``preprocess`` of
    each; images of one size are resized in one call (inference batches are usually one survey's cutouts)."""
    arrays = [check_image(im) for im in images]
    if not arrays:
        raise ValueError("no images to preprocess")
    if len({a.shape for a in arrays}) > 1:
        return torch.stack([preprocess(a, config) for a in arrays])
    rows, cols = field_box(arrays[0].shape, config.field_of_view)
    t = torch.from_numpy(np.stack([a[rows, cols] for a in arrays])).permute(0, 3, 1, 2)
    t = _pad_square(t, _border_median(t))
    size = (config.image_size, config.image_size)
    return normalise(_resize(t, size).float(), config)


def preprocess_map(fractions: np.ndarray, config: UNetConfig) -> torch.Tensor:
    """(H, W) fractions -> (S, S) float32 on the network grid, padded (with 0) and resampled like the image."""
    rows, cols = field_box(fractions.shape, config.field_of_view)
    t = _pad_square(torch.from_numpy(np.ascontiguousarray(fractions[rows, cols], dtype=np.float32))[None, None], 0.0)
    return _resize(t, (config.image_size, config.image_size))[0, 0].clamp_(0.0, 1.0)


def postprocess(pred: torch.Tensor | np.ndarray, original_shape: tuple[int, ...],
                field_of_view: float = 1.0) -> np.ndarray:
    """(C, S, S) fractions on the network grid -> (C, H, W) float32 in [0, 1] on the image's full frame,
    ``original_shape`` = the image's (H, W[, 3]) in px; 0 outside the field of view."""
    t = torch.as_tensor(pred).float()
    if t.ndim != 3:
        raise ValueError(f"expected a (C, S, S) prediction, got shape {tuple(t.shape)}")
    return postprocess_batch(t[None], [original_shape], field_of_view)[0]


def postprocess_batch(preds: torch.Tensor, shapes: Sequence[tuple[int, ...]],
                      field_of_view: float = 1.0) -> list[np.ndarray]:
    """``postprocess`` of a (B, C, S, S) batch, one entry per image shape; one resize call when all
    images share a shape."""
    shapes = [tuple(int(v) for v in sh[:2]) for sh in shapes]
    if len(shapes) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(shapes)} image shapes")
    if len(set(shapes)) != 1:
        return [postprocess_batch(p[None], [sh], field_of_view)[0] for p, sh in zip(preds, shapes)]
    rows, cols = field_box(shapes[0], field_of_view)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    top, left, side = square_box(h, w)
    inside = _resize(torch.as_tensor(preds).float(), (side, side))[..., top:top + h, left:left + w]
    if inside.shape[-2:] == shapes[0]:
        return list(inside.clamp(0.0, 1.0).numpy())
    out = torch.zeros((*inside.shape[:2], *shapes[0]))
    out[..., rows, cols] = inside.clamp(0.0, 1.0)
    return list(out.numpy())


def labels_outside_field(samples: Sequence[SampleSource], field_of_view: float) -> dict:
    """How much of the marked label mass (sum of fractions, both structures) lies outside the field of view:
    over all ``samples`` and for the worst one. A model never predicts structure there, so an admin should
    know when a field of view cuts galaxies off."""
    total = outside = 0.0
    worst, worst_key = 0.0, None
    for source in samples:
        sample = resolve(source)
        rows, cols = field_box(sample.image.shape, field_of_view)
        mass = out = 0.0
        for structure in STRUCTURES:
            m = getattr(sample, structure)
            if m is not None:
                whole = float(m.sum())
                mass, out = mass + whole, out + whole - float(m[rows, cols].sum())
        total, outside = total + mass, outside + out
        if mass and out / mass > worst:
            worst, worst_key = out / mass, sample.key
    return {"fraction": outside / total if total else 0.0, "worst": worst, "worst_key": worst_key}


# --- dataset -------------------------------------------------------------------------------------------------
SampleSource = Sample | Callable[[], Sample]


def resolve(source: SampleSource) -> Sample:
    sample = source() if callable(source) else source
    if not isinstance(sample, Sample):
        raise TypeError(f"a sample loader must return a Sample, got {type(sample).__name__}")
    return sample


class FractionDataset(torch.utils.data.Dataset):
    """Items (image (3,S,S), target (2,S,S), weight (2,)) from in-memory Samples or zero-argument
    callables that load one (so a large selection need not sit in memory).

    With ``augment`` the augmentation of item i in epoch e (``unet.augment.augment``: geometry shared by
    image and maps, photometry of the image only) is drawn from generators seeded by (seed, e, i):
    reproducible whatever the worker count, and resumable from any epoch.
    """

    def __init__(self, samples: Sequence[SampleSource], config: UNetConfig, *, augment: bool, seed: int = 0):
        self.samples = samples
        self.config = config
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = resolve(self.samples[index])
        image = preprocess(sample.image, self.config)
        s = self.config.image_size
        maps = [sample.target(st) for st in STRUCTURES]
        target = torch.stack([preprocess_map(m, self.config) if m is not None else torch.zeros(s, s)
                              for m in maps])
        weight = torch.from_numpy(loss_weights(sample, self.config))
        if self.augment:
            image, target = augment_item(image, target, self.config, seed=self.seed, epoch=self.epoch, index=index)
        return image, target, weight
