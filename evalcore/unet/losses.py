"""Masked losses on vote-fraction maps (no Django)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean over the (galaxy, structure) maps that take part (weight 1) of the per-map mean pixel loss.

    logits, target: (B, C, H, W); weight: (B, C) in {0, 1}. A map with weight 0 contributes exactly nothing,
    value or gradient, whatever its target holds. Returns 0 (with a gradient path) if no map takes part.
    """
    logits = logits.float()
    target = target.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    else:
        diff = torch.sigmoid(logits) - target
        if kind == "l1":
            per_pixel = diff.abs()
        elif kind == "mse":
            per_pixel = diff * diff
        else:
            raise ValueError(f"unknown loss {kind!r}; use 'l1', 'mse' or 'bce'")
    per_map = per_pixel.mean(dim=(2, 3))
    w = weight.to(per_map.dtype)
    # where() rather than a product, so a NaN in an ignored map cannot leak into the sum
    contrib = torch.where(w > 0, per_map * w, torch.zeros_like(per_map))
    return contrib.sum() / w.sum().clamp_min(1.0)
