"""Where and how the network runs: device choice at run time, thread count, reduced precision (no Django).

Reduced precision is bf16 autocast (+ channels_last memory layout) on CPU and fp16/bf16 autocast on CUDA.
Nothing here assumes a GPU: every path is chosen when it runs.
"""
from __future__ import annotations

import contextlib
import os

import torch


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``preference`` ("cpu", "cuda", "cuda:1", ...) or CUDA when present, else CPU.

    Asking for CUDA on a machine without it is an error rather than a silent fallback, so a job that was
    meant for a GPU never crawls along on a CPU unnoticed.
    """
    if preference is None or str(preference) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} was requested but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {preference!r}; use 'cpu', 'cuda' or 'cuda:N'")
    return device


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (process-wide) when given; return the count in effect.

    Several workers on one machine should each get a share of the cores rather than all of them.
    """
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def default_threads() -> int:
    """OMP_NUM_THREADS when set, else the number of usable cores."""
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced-precision dtype used on ``device``: bf16 on CPU and on CUDA that supports it, else fp16."""
    if device.type == "cpu":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast(device: torch.device, enabled: bool):
    """A context that runs the forward pass in reduced precision on ``device`` (or a no-op context)."""
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_format(device: torch.device, optimized: bool) -> torch.memory_format:
    """channels_last where it pays (oneDNN convolutions on CPU, tensor cores on CUDA)."""
    return torch.channels_last if optimized else torch.contiguous_format


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MB: allocated tensor memory on CUDA, the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def cpu_bf16_native() -> bool:
    """True when this CPU has native bf16 arithmetic (AVX512-BF16 / AMX) that oneDNN uses.

    Without it bf16 autocast is emulated and much slower than fp32 (measured on this machine's AVX2
    CPU: about 10x slower for the U-Net), so the optimised CPU path only uses bf16 where this holds.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def reduced_precision_pays(device: torch.device) -> bool:
    """Whether autocast speeds things up here: on CUDA always, on CPU only with native bf16."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_bf16_native())
