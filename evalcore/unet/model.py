"""The network: its configuration, construction, and the file format of trained weights (no Django).

Output: two channels (spiral, bar), each a per-pixel vote fraction in [0, 1], obtained as the sigmoid
of the network's logits. Sigmoid rather than the study's ReLU (clamped at 1): a clamped ReLU has zero
gradient below 0 and above 1, so a pixel that overshoots stops learning, and BCE on soft targets needs
logits anyway (``binary_cross_entropy_with_logits`` is the numerically stable form). Sigmoid never gives
exactly 0, but model masks are stored as k/255 (``maskcodec``), so anything below 1/510 is stored as 0.
"""
from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from evalcore.vocabulary import STRUCTURES  # also the output channel order

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # building an encoder must never reach for the network

LOSSES = ("l1", "mse", "bce")
INPUT_NORMS = ("percentile", "none")
FORMAT = "evalsite-unet"
FORMAT_VERSION = 1
INITIAL_LOGIT = -3.0


@dataclass
class UNetConfig:
    """Everything needed to rebuild, train and apply a model. ``to_dict``/``from_dict`` round-trip it.

    Image sizes are in px of the network input (the image is resized to ``image_size`` x ``image_size``).
    """

    encoder: str = "resnet18"
    # 192 px: on the benchmark survey's validation split spiral IoU vs truth 0.641 against 0.610 at 128 px, bar
    # detection better, for ~2.2x the compute (docs/unet.md). The demo model stays at 128 px (demo_config).
    image_size: int = 192
    # Fraction of the frame's side the network sees: the centred square (rectangle, for non-square frames)
    # of this size is resized to image_size; masks are 0 outside it. 1 = the whole frame.
    field_of_view: float = 1.0
    # How each image's pixels are scaled for the network: "percentile" stretches each image between its own
    # 1st and 99.5th percentile (all channels together, so colours keep their ratios), so the display stretch
    # a survey chose (a dark Lupton composite, a bright asinh one) does not decide what the network sees;
    # "none" divides by 255 only (the study; models stored before this option existed).
    input_norm: str = "percentile"
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 8)
    # BCE on soft targets, not the study's L1: on the benchmark survey an L1 model's bar channel died (sigmoid
    # saturated at 0 where L1's gradient vanishes: no bar ever predicted) while BCE found 76% of bars; BCE is a
    # proper score, so it predicts the mean vote fraction (docs/unet.md, "Loss").
    loss: str = "bce"
    # Asked-but-empty maps: teach "none here" (True) or leave out of the loss like the study did (False).
    # True was better on the benchmark survey's validation split (spiral IoU vs truth, calibration; bar
    # detection alike; docs/unet.md, "On the benchmark survey").
    empty_bar_teaches_no_bar: bool = True
    empty_spiral_teaches_no_spiral: bool = True
    # optimisation
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.075
    grad_clip: float = 0.5
    patience: int = 10
    min_delta: float = 0.0  # a validation loss must beat the best by more than this to count as better
    seed: int = 0
    # augmentation (training only; unet.augment, docs/unet.md "Augmentation"): the study's geometry (rotation,
    # flips, a random resized crop of area crop_area) plus scale, and photometric changes of the image only
    # that take away colour, stretch, depth and resolution cues (a model that learned a renderer's colour
    # convention found no arm on another renderer's galaxies)
    rotate: bool = True
    flip: bool = True
    crop: bool = True
    crop_area: tuple[float, float] = (0.6, 0.8)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    scale: bool = True
    colour_jitter: bool = True
    channel_permute: bool = True
    greyscale: bool = True
    blur: bool = True
    noise: bool = True
    # reduced precision: "auto" = bf16 + channels_last on CPU, mixed precision on CUDA, after a check
    precision: str = "auto"
    num_workers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        self.crop_area = tuple(float(a) for a in self.crop_area)
        self.crop_ratio = tuple(float(r) for r in self.crop_ratio)
        self.validate()

    def validate(self) -> None:
        problems = []
        if self.input_norm not in INPUT_NORMS:
            problems.append(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not (16 <= self.image_size <= 2048) or self.image_size % 32:
            problems.append(f"image_size must be a multiple of 32 in 32..2048 px, got {self.image_size}")
        if not (0.05 <= self.field_of_view <= 1):
            problems.append(f"field_of_view must be a fraction of the frame in 0.05..1, got {self.field_of_view}")
        if len(self.decoder_channels) != 5:
            problems.append(f"decoder_channels needs 5 entries (encoder depth 5), got {self.decoder_channels}")
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.grad_clip <= 0:
            problems.append("learning_rate and grad_clip must be > 0 and weight_decay >= 0")
        lo, hi = self.crop_area
        if not (0 < lo <= hi <= 1):
            problems.append(f"crop_area must satisfy 0 < low <= high <= 1, got {self.crop_area}")
        if not (0 < self.crop_ratio[0] <= self.crop_ratio[1]):
            problems.append(f"crop_ratio must satisfy 0 < low <= high, got {self.crop_ratio}")
        if self.precision not in ("auto", "fp32"):
            problems.append(f"precision must be 'auto' or 'fp32', got {self.precision!r}")
        if problems:
            raise ValueError("invalid U-Net configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown U-Net configuration key(s): {', '.join(unknown)}")
        # a configuration stored before input_norm existed was trained (and must be applied) without it
        return cls(**{"input_norm": "none", **data})

    def replace(self, **changes) -> UNetConfig:
        return dataclasses.replace(self, **changes)


def demo_config(**changes) -> UNetConfig:
    """The demo model (small, fast): the default resnet18 encoder and slim decoder at 128 px instead of the
    default 192 px (2.2x fewer pixels), with a short schedule, trained by epochs (the demo gates the result and
    continues training while it fails the quality gate, ``evalsite.demo``)."""
    return UNetConfig(**{"image_size": 128, "epochs": 60, "patience": 10, "batch_size": 16, **changes})


class FractionUNet(nn.Module):
    """smp.Unet returning logits; ``fractions`` applies the sigmoid in float32 (also under autocast)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        import segmentation_models_pytorch as smp

        self.net = smp.Unet(
            encoder_name=config.encoder,
            encoder_weights=None,
            in_channels=3,
            classes=len(STRUCTURES),
            decoder_channels=config.decoder_channels,
            activation=None,
        )
        # Most pixels of most maps are (near) 0: starting the output at sigmoid(-3) ~ 0.05 instead of 0.5
        # saves the first epochs from just learning "mostly background" (the prior-bias trick of RetinaNet).
        head = self.net.segmentation_head[0]
        nn.init.constant_(head.bias, INITIAL_LOGIT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def fractions(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x).float())


def build_model(config: UNetConfig, encoder_weights: str | Path | None = None) -> FractionUNet:
    """A freshly initialised model; ``encoder_weights`` optionally names a local file of encoder weights
    (a state dict of the smp/timm encoder, e.g. ImageNet resnet18), never downloaded."""
    try:
        model = FractionUNet(config)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"cannot build a U-Net with encoder {config.encoder!r}: {exc}") from exc
    if encoder_weights:
        load_encoder_weights(model, encoder_weights)
    return model


def load_encoder_weights(model: FractionUNet, path: str | Path) -> None:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    # ImageNet classifiers carry a head the encoder does not have; anything else missing is an error.
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier.", "head."))}
    result = model.net.encoder.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise ValueError(
            f"{path} does not fit encoder {type(model.net.encoder).__name__}: "
            f"{len(result.missing_keys)} missing keys, e.g. {result.missing_keys[:3]}"
        )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- the weights file ----------------------------------------------------------------------------------
def model_bundle(model: nn.Module, config: UNetConfig, metadata: dict | None = None,
                 calibration: torch.Tensor | None = None) -> dict:
    """The portable form of a trained model: format tag, configuration (incl. preprocessing), weights and
    optionally calibration images ((N, 3, S, S) uint8 network inputs) for int8 inference."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if calibration is not None and calibration.dtype != torch.uint8:
        raise TypeError("calibration images are stored as uint8 network inputs (preprocessed x 255)")
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_dict(),
            "metadata": dict(metadata or {}), "state_dict": state, "calibration": calibration}


def save_model(target: str | Path | BinaryIO, model: nn.Module, config: UNetConfig,
               metadata: dict | None = None, calibration: torch.Tensor | None = None) -> None:
    """Write a model bundle to a path (atomically) or a binary file object."""
    bundle = model_bundle(model, config, metadata, calibration)
    if isinstance(target, (str, Path)):
        path = Path(target)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(bundle, tmp)
        os.replace(tmp, path)
    else:
        torch.save(bundle, target)


def model_bytes(model: nn.Module, config: UNetConfig, metadata: dict | None = None,
                calibration: torch.Tensor | None = None) -> bytes:
    buf = io.BytesIO()
    save_model(buf, model, config, metadata, calibration)
    return buf.getvalue()


def read_bundle(source: str | Path | bytes | BinaryIO | dict) -> dict:
    """Read and check a model bundle from a path, bytes, a binary file object or an already loaded dict."""
    if isinstance(source, dict):
        bundle = source
    else:
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        elif isinstance(source, (str, Path)) and not Path(source).is_file():
            raise FileNotFoundError(f"model file {source} does not exist")
        try:
            bundle = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a damaged file
            raise ValueError(f"not a readable model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} model file (missing format tag)")
    if bundle.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"model file format version {bundle.get('format_version')} is not supported "
                         f"(this code reads version {FORMAT_VERSION})")
    return bundle


def load_model(source: str | Path | bytes | BinaryIO | dict) -> tuple[FractionUNet, UNetConfig, dict]:
    """(model on CPU in eval mode, its config, its metadata) from a model bundle (calibration images, if
    any: ``read_bundle(source)["calibration"]``)."""
    bundle = read_bundle(source)
    config = UNetConfig.from_dict(bundle["config"])
    model = build_model(config)
    model.load_state_dict(bundle["state_dict"])
    model.eval()
    return model, config, bundle.get("metadata", {})
