"""Frames into an animation file: GIF with Pillow alone, MP4 only through an ffmpeg found on PATH (no encoder is a
dependency). Written atomically: a failed or interrupted write leaves no file behind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.files import atomic_write

FORMATS = (".gif", ".mp4")


def check_animation_path(path: Path) -> None:
    """Refuse, before any work, a file type that cannot be written here."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: an animation is written as {' or '.join(FORMATS)}, not {suffix or 'no suffix'}")
    if suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise InputError(f"{path}: writing MP4 needs ffmpeg on PATH, and none was found; write a .gif (Pillow "
                         "alone) or install ffmpeg")


def write_animation(path: Path, frames: Sequence, durations_ms: Sequence[int]) -> Path:
    """Pillow images of one size and mode ('L' or 'RGB'), each shown for its duration, looping forever."""
    check_animation_path(path)
    if path.suffix.lower() == ".gif":
        atomic_write(path, lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=list(frames[1:]),
                                                      duration=list(durations_ms), loop=0))
    else:
        atomic_write(path, lambda tmp: _encode_mp4(tmp, frames, durations_ms))
    return path


def _encode_mp4(target: str, frames: Sequence, durations_ms: Sequence[int]) -> None:
    """H.264 at the rate of the shortest frame; longer frames are repeated (MP4 has no per-frame duration)."""
    step = min(durations_ms)
    width, height = frames[0].size
    pixel = "gray" if frames[0].mode == "L" else "rgb24"
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", pixel, "-s", f"{width}x{height}",
               "-framerate", f"{1000 / step:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v",
               "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", target]
    data = b"".join(np.asarray(frame).tobytes() * max(1, round(ms / step)) for frame, ms in zip(frames, durations_ms))
    result = subprocess.run(command, input=data, capture_output=True)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"ffmpeg could not write the MP4 ({message[-1] if message else f'status {result.returncode}'})")
