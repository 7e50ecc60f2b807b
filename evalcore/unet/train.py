"""Training: AdamW, gradient clipping, early stopping, best model kept, exact resume (no Django).

``train()`` is the one entry point. Every epoch it writes ``last.pt`` (weights, optimiser, scheduler,
grad scaler, epoch, early-stopping state, history, RNG states of python/numpy/torch) and, when the
validation loss improved, ``best.pt`` (a model bundle the Predictor reads). Called again with the same
``checkpoint_dir`` it continues from ``last.pt`` and reaches exactly the state an uninterrupted run
would have: data order and augmentation are drawn from generators seeded by (seed, epoch), and the
global RNG states are restored too.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from evalcore.unet import device as dev
from evalcore.unet.data import FractionDataset, SampleSource, labels_outside_field
from evalcore.unet.infer import calibration_images
from evalcore.unet.losses import masked_loss
from evalcore.unet.model import FractionUNet, UNetConfig, build_model, model_bytes, save_model

logger = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "evalsite-unet-checkpoint"
LAST, BEST = "last.pt", "best.pt"
# Relative difference of the first batch's loss, bf16 vs fp32, above which training falls back to fp32.
PRECISION_TOLERANCE = 0.02
# Continuing a finished schedule for more epochs restarts the learning rate at this fraction of the configured one.
EXTEND_LR_FACTOR = 0.3


@dataclass
class EpochReport:
    """What the ``progress`` callback receives after each epoch. Times in s; epochs count from 1."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    learning_rate: float
    images_per_s: float
    elapsed_s: float
    eta_s: float
    best_epoch: int
    best_val_loss: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: FractionUNet  # best weights, on CPU, eval mode
    config: UNetConfig
    history: list[dict]
    best_epoch: int
    best_val_loss: float
    stopped: str  # "completed" | "early_stopping" | "cancelled" | "diverged" | "time_budget"
    epochs_run: int
    images_per_s: float  # training throughput, this session
    peak_memory_mb: float
    elapsed_s: float
    device: str
    precision: dict = field(default_factory=dict)
    calibration: torch.Tensor | None = None  # (N, 3, S, S) uint8 validation inputs for int8 inference

    def model_bytes(self, metadata: dict | None = None) -> bytes:
        """The model file (best weights, config, metadata, calibration images) for storage."""
        return model_bytes(self.model, self.config, metadata, self.calibration)


class TrainingCancelled(Exception):
    pass


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite before any epoch had a finite validation loss."""


# --- RNG state ------------------------------------------------------------------------------------------------
def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _is_extension(stored: dict, wanted: dict) -> bool:
    """True when ``wanted`` is ``stored`` with more epochs (and possibly another patience): continuing a
    finished schedule for longer (the demo's rounds until the quality gate passes)."""
    def fixed(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in ("epochs", "patience")}

    return wanted["epochs"] > stored["epochs"] and fixed(stored) == fixed(wanted)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- precision --------------------------------------------------------------------------------------------
def _choose_precision(model, config: UNetConfig, device: torch.device, batch, log) -> dict:
    """Reduced precision on when asked for ("auto") and the first batch's loss agrees with fp32."""
    if config.precision == "fp32":
        return {"mode": "fp32", "channels_last": False, "reason": "configured"}
    if not dev.reduced_precision_pays(device):
        # emulated bf16 (CPUs without AVX512-BF16/AMX) is several times slower than fp32
        return {"mode": "fp32", "channels_last": False, "reason": "no native bf16 on this CPU"}
    images, target, weight = (t.to(device) for t in batch)
    model.eval()
    with torch.no_grad():
        ref = masked_loss(model(images), target, weight, config.loss).item()
        with dev.autocast(device, True):
            low = masked_loss(model(images.contiguous(memory_format=torch.channels_last)), target, weight,
                              config.loss).item()
    model.train()
    rel = abs(low - ref) / max(abs(ref), 1e-8)
    dtype = str(dev.autocast_dtype(device)).replace("torch.", "")
    check = {"first_batch_loss_fp32": ref, f"first_batch_loss_{dtype}": low, "relative_difference": rel}
    if rel > PRECISION_TOLERANCE:
        log(f"{dtype} loss differs from fp32 by {rel:.3%} on the first batch; training in fp32")
        return {"mode": "fp32", "channels_last": True, "reason": "accuracy check failed", **check}
    return {"mode": dtype, "channels_last": True, "reason": "accuracy check passed", **check}


# --- checkpoints ----------------------------------------------------------------------------------------
def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """A ``last.pt`` checkpoint as a dict (config, epoch, history, states)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise ValueError(f"checkpoint {path} is not readable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an evalsite U-Net checkpoint")
    return ckpt


def _loader(dataset: FractionDataset, config: UNetConfig, epoch: int, shuffle: bool):
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=shuffle, generator=generator if shuffle else None,
        num_workers=config.num_workers,
        # a last training batch of one image would break BatchNorm; its images come back next epoch
        drop_last=shuffle and len(dataset) > config.batch_size,
    )


def evaluate_loss(model, loader, config: UNetConfig, device: torch.device, reduced: bool,
                  fmt: torch.memory_format = torch.contiguous_format) -> float:
    """Mean masked loss over a loader, weighted by the number of maps that take part."""
    model.eval()
    total, maps = 0.0, 0.0
    with torch.inference_mode():
        for images, target, weight in loader:
            images = images.to(device).contiguous(memory_format=fmt)
            with dev.autocast(device, reduced):
                logits = model(images)
            w = weight.to(device)
            n = float(w.sum())
            if n:
                total += masked_loss(logits, target.to(device), w, config.loss).item() * n
                maps += n
    model.train()
    return total / maps if maps else float("nan")


def train(
    config: UNetConfig,
    train_samples: Sequence[SampleSource],
    val_samples: Sequence[SampleSource],
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    threads: int | None = None,
    encoder_weights: str | Path | None = None,
    progress: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
    time_budget_s: float | None = None,
) -> TrainResult:
    """Train a U-Net and return the best model (lowest validation loss).

    ``checkpoint_dir``: where ``last.pt``/``best.pt`` go; with ``resume`` an existing ``last.pt`` is
    continued (its config must equal ``config``). ``progress`` is called after every epoch with an
    EpochReport. ``should_stop`` is polled before every batch; when it returns True training stops
    (the last completed epoch's checkpoint stays valid for a resume) and the result says "cancelled".
    ``time_budget_s``: stop after the epoch when another epoch (at this session's mean epoch time) would
    exceed the budget (s, this session); the result says "time_budget".
    """
    if not len(train_samples):
        raise ValueError("no training samples")
    if not len(val_samples):
        raise ValueError("no validation samples: early stopping and the best checkpoint need them")
    log = log or logger.info
    device = dev.pick_device(device)
    dev.set_threads(threads)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None
    if ckpt_dir:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    _seed_everything(config.seed)
    model = build_model(config, encoder_weights).to(device)
    train_ds = FractionDataset(train_samples, config, augment=True, seed=config.seed)
    val_ds = FractionDataset(val_samples, config, augment=False, seed=config.seed)
    val_loader = _loader(val_ds, config, 0, shuffle=False)
    calibration = calibration_images(val_samples, config)
    if config.field_of_view < 1:
        cut = labels_outside_field(train_samples, config.field_of_view)
        log(f"field of view {config.field_of_view:g} of the frame: {cut['fraction']:.2%} of the training labels' "
            f"marked mass lies outside it (most for one galaxy: {cut['worst']:.1%}, {cut['worst_key'] or '-'})")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)

    start_epoch, history, best_epoch, best_val, bad_epochs, elapsed_before = 0, [], 0, math.inf, 0, 0.0
    best_state = None
    precision = None
    last_path = ckpt_dir / LAST if ckpt_dir else None
    extending = False
    if last_path and resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        extending = _is_extension(ckpt["config"], config.to_dict())
        if ckpt["config"] != config.to_dict() and not extending:
            raise ValueError(f"{last_path} was made with a different configuration; use another checkpoint "
                             "folder or resume with the stored configuration (only more epochs may differ)")
        if ckpt["n_train"] != len(train_samples) or ckpt["n_val"] != len(val_samples):
            raise ValueError(f"{last_path} was made with {ckpt['n_train']} training / {ckpt['n_val']} validation "
                             f"samples, not {len(train_samples)} / {len(val_samples)}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, history = ckpt["epoch"], ckpt["history"]
        best_epoch, best_val, bad_epochs = ckpt["best_epoch"], ckpt["best_val_loss"], ckpt["bad_epochs"]
        best_state, precision = ckpt["best_state"], ckpt["precision"]
        elapsed_before = ckpt["elapsed_s"]
        log(f"resuming after epoch {start_epoch} from {last_path}")
        if extending:
            # more epochs than the finished schedule: a warm restart, a new cosine schedule over the added epochs
            # from EXTEND_LR_FACTOR of the learning rate, and a fresh patience; the best model so far stays
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] = config.learning_rate * EXTEND_LR_FACTOR
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs - start_epoch)
            bad_epochs = 0
            log(f"extending from {ckpt['config']['epochs']} to {config.epochs} epochs: learning rate restarts at "
                f"{config.learning_rate * EXTEND_LR_FACTOR:g}")

    if precision is None:
        first = next(iter(_loader(train_ds, config, 0, shuffle=False)))
        precision = _choose_precision(model, config, device, first, log)
    reduced = precision["mode"] != "fp32"
    fmt = dev.memory_format(device, precision["channels_last"])
    model = model.to(memory_format=fmt)
    scaler = None
    if reduced and device.type == "cuda" and dev.autocast_dtype(device) == torch.float16:
        scaler = torch.amp.GradScaler("cuda")
    if start_epoch and scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if start_epoch:
        _set_rng_state(ckpt["rng"])

    t0 = time.perf_counter()
    images_seen, train_time = 0, 0.0
    stopped = "completed"
    epoch = start_epoch
    model.train()
    last_epoch = config.epochs
    if best_epoch and bad_epochs >= config.patience:  # resuming a run that had already stopped early
        stopped, last_epoch = "early_stopping", start_epoch
    for epoch in range(start_epoch + 1, last_epoch + 1):
        train_ds.set_epoch(epoch)
        running, maps = 0.0, 0.0
        try:
            for images, target, weight in _loader(train_ds, config, epoch, shuffle=True):
                if should_stop and should_stop():
                    raise TrainingCancelled
                tb = time.perf_counter()
                images = images.to(device, non_blocking=True).contiguous(memory_format=fmt)
                target, weight = target.to(device), weight.to(device)
                with dev.autocast(device, reduced):
                    logits = model(images)
                loss = masked_loss(logits, target, weight, config.loss)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                train_time += time.perf_counter() - tb
                images_seen += images.shape[0]
                n = float(weight.sum())
                running += loss.item() * n
                maps += n
                if not math.isfinite(loss.item()):
                    raise FloatingPointError
        except TrainingCancelled:
            stopped = "cancelled"
            log(f"cancelled during epoch {epoch}; the checkpoint of epoch {epoch - 1} stays")
            epoch -= 1
            break
        except FloatingPointError:
            if best_state is None:
                raise TrainingDiverged(f"training diverged in epoch {epoch} (loss not finite); "
                                       "lower the learning rate") from None
            stopped = "diverged"
            log(f"diverged in epoch {epoch} (loss not finite); keeping the best epoch {best_epoch}")
            epoch -= 1
            break
        scheduler.step()
        val_loss = evaluate_loss(model, val_loader, config, device, reduced, fmt)
        if not math.isfinite(val_loss) and best_state is None:
            raise TrainingDiverged(f"validation loss is {val_loss} after epoch {epoch}; lower the learning rate")
        if val_loss < best_val - config.min_delta:
            best_val, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
            if ckpt_dir:
                save_model(ckpt_dir / BEST, model, config, {"epoch": epoch, "val_loss": val_loss}, calibration)
        else:
            bad_epochs += 1
        elapsed = elapsed_before + time.perf_counter() - t0
        done_here = epoch - start_epoch
        eta = (time.perf_counter() - t0) / done_here * (config.epochs - epoch)
        report = EpochReport(epoch, config.epochs, running / maps if maps else float("nan"), val_loss,
                             optimizer.param_groups[0]["lr"], images_seen / train_time if train_time else 0.0,
                             elapsed, eta, best_epoch, best_val)
        history.append(report.as_dict())
        if bad_epochs >= config.patience:
            stopped = "early_stopping"
        if ckpt_dir:
            _atomic_save({
                "format": CHECKPOINT_FORMAT, "config": config.to_dict(), "epoch": epoch,
                "n_train": len(train_samples), "n_val": len(val_samples),
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "best_state": best_state, "best_epoch": best_epoch, "best_val_loss": best_val,
                "bad_epochs": bad_epochs, "history": history, "precision": precision, "elapsed_s": elapsed,
                "rng": _rng_state(),
            }, last_path)
        log(f"epoch {epoch}/{config.epochs}: train {report.train_loss:.4f} val {val_loss:.4f} "
            f"({report.images_per_s:.1f} img/s)")
        if progress:
            progress(report)
        if stopped == "early_stopping":
            log(f"early stopping: no improvement for {config.patience} epochs (best epoch {best_epoch})")
            break
        session = time.perf_counter() - t0
        if time_budget_s is not None and epoch < config.epochs and session + session / done_here > time_budget_s:
            stopped = "time_budget"
            log(f"stopping after epoch {epoch}: another epoch would exceed the {time_budget_s:.0f} s budget")
            break

    throughput = images_seen / train_time if train_time else 0.0
    peak = dev.peak_memory_mb(device)
    log(f"finished ({stopped}) after epoch {epoch}: best epoch {best_epoch}, val loss {best_val:.4f}; "
        f"training {throughput:.1f} img/s on {device} ({precision['mode']}), peak memory {peak:.0f} MB")
    best = build_model(config)
    best.load_state_dict(best_state if best_state is not None else {k: v.cpu() for k, v in model.state_dict().items()})
    best.eval()
    return TrainResult(
        model=best, config=config, history=history, best_epoch=best_epoch, best_val_loss=best_val,
        stopped=stopped, epochs_run=epoch, images_per_s=throughput,
        peak_memory_mb=peak, elapsed_s=elapsed_before + time.perf_counter() - t0,
        device=str(device), precision=precision, calibration=calibration,
    )
