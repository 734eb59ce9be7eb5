"""Which torch device a request runs on: one rule for the daecf command, the Slicer module and training."""

from __future__ import annotations

from ..errors import InputError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``auto``: CUDA where there is a device, else the CPU; ``cuda`` without a device is an InputError."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("no CUDA device is available")
    return name
