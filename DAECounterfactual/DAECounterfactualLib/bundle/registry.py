"""Bundles by name: the bundled model folders ($DAECF_MODELS, the repository's or the installed extension's
Resources/Models) and the names found there."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BundleError
from .store import MANIFEST


def bundled_model_dirs() -> list[Path]:
    """Where named bundles live: $DAECF_MODELS (os.pathsep-separated), then the repository's or the installed
    extension's Resources/Models."""
    package = Path(__file__).resolve().parents[1]  # DAECounterfactualLib
    extra = [Path(p) for p in os.environ.get("DAECF_MODELS", "").split(os.pathsep) if p]
    candidates = extra + [package.parent.parent / "Resources" / "Models", package.parent / "Resources" / "Models"]
    return [p for p in dict.fromkeys(candidates) if p.is_dir()]


def available_bundles() -> dict[str, Path]:
    """Bundle name -> folder, for every folder with a manifest under the bundled model directories."""
    found: dict[str, Path] = {}
    for directory in bundled_model_dirs():
        for manifest in sorted(directory.glob(f"*/{MANIFEST}")):
            found.setdefault(manifest.parent.name, manifest.parent)
    return found


def resolve_bundle(name_or_path: str | os.PathLike) -> Path:
    """A bundle folder from a bundled model's name or a path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    bundles = available_bundles()
    if str(name_or_path) in bundles:
        return bundles[str(name_or_path)]
    raise BundleError(f"{name_or_path}: neither a bundle folder nor a bundled model name "
                      f"(bundled: {', '.join(sorted(bundles)) or 'none'})")
