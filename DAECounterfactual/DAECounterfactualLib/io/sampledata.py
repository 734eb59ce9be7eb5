"""Sample spine images that a fresh machine can obtain from a package registry, never committed to the repo.

The tptbox 1.1.0 wheel on PyPI ships a real lumbar CT crop (L2-L4, 1.5 mm, with vertebra and sub-region masks)
and a lumbar T2w MRI crop. ``fetch_sample_wheel`` downloads that pinned wheel with pip (an explicit user action:
``daecf fetch-sample``, run by ``make``); everything else only reads the cached wheel, checks its sha256 and
extracts the member files, so nothing reaches the network at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from ..errors import DAECFError
from .files import cache_dir, sha256_file

WHEEL_REQUIREMENT = "tptbox==1.1.0"
WHEEL_NAME = "tptbox-1.1.0-py3-none-any.whl"
WHEEL_SHA256 = "975a68f4117ab81fcc2d819d6127f301b1cc50210e08e73df1b9a818ee3be984"
WHEEL_LICENSE = "Apache-2.0 (LICENSE file of the tptbox wheel and repository)"

SAMPLES = {
    "spine-ct": {
        "image": "TPTBox/tests/sample_ct/sub-ct_label-22_ct.nii.gz",
        "vertebra_mask": "TPTBox/tests/sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz",
        "subregion_mask": "TPTBox/tests/sample_ct/sub-ct_seg-subreg_label-22_msk.nii.gz",
    },
    "spine-mri": {
        "image": "TPTBox/tests/sample_mri/sub-mri_label-6_T2w.nii.gz",
        "vertebra_mask": "TPTBox/tests/sample_mri/sub-mri_seg-vert_label-6_msk.nii.gz",
        "subregion_mask": "TPTBox/tests/sample_mri/sub-mri_seg-subreg_label-6_msk.nii.gz",
    },
}


def sample_cache_dir() -> Path:
    return cache_dir() / "sample"


def fetch_sample_wheel(cache: Path | None = None) -> Path:
    """Download the pinned wheel (no dependencies) into the cache with pip, and verify it."""
    cache = cache or sample_cache_dir()
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   WHEEL_REQUIREMENT, "-d", str(cache)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise DAECFError(f"could not download {WHEEL_REQUIREMENT} from the package index:\n"
                             f"{result.stderr.strip()[-1000:]}")
    verified_wheel(cache)
    return wheel


def verified_wheel(cache: Path | None = None) -> Path:
    wheel = (cache or sample_cache_dir()) / WHEEL_NAME
    if not wheel.exists():
        raise DAECFError(f"sample data not found at {wheel}: run `daecf fetch-sample` once (downloads "
                         f"{WHEEL_REQUIREMENT} from PyPI, 8.8 MB)")
    if sha256_file(wheel) != WHEEL_SHA256:
        raise DAECFError(f"{wheel}: sha256 does not match the pinned {WHEEL_REQUIREMENT} wheel; delete it and "
                         f"run `daecf fetch-sample` again")
    return wheel


def sample_files(name: str = "spine-ct", cache: Path | None = None) -> dict[str, Path]:
    """Paths of the sample's image and masks, extracted from the verified wheel on first use."""
    if name not in SAMPLES:
        raise DAECFError(f"unknown sample {name!r}; samples: {sorted(SAMPLES)}")
    cache = cache or sample_cache_dir()
    wheel = verified_wheel(cache)
    target = cache / name
    paths = {role: target / Path(member).name for role, member in SAMPLES[name].items()}
    if not all(p.exists() for p in paths.values()):
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for role, member in SAMPLES[name].items():
                tmp = paths[role].with_suffix(".part")
                tmp.write_bytes(archive.read(member))
                os.replace(tmp, paths[role])
    return paths
