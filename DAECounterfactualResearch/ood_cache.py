"""The encoded shift sets of one bundle kept on disk (issue 23): latents ("z") and cases ("g") of every set,
round-trip errors ("r") and their cases ("rg") where measured, with the set records and skipped shifts, so that
the measurement can be rerun and the shipped detector fitted on exactly the measured sets without encoding again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

KINDS = ("z", "g", "r", "rg")


def read_cache(path: Path, round_trip: int = 0, fit_sources: tuple[str, ...] = ()) -> dict | None:
    """The cached sets at ``path`` (.npz beside its .json), or None when absent, measured with fewer round
    trips than ``round_trip``, or cut for other OOD fit sources (``Experiment.ood_sources``; () = all) than
    ``fit_sources``."""
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("round_trip", 0) < round_trip or tuple(meta.get("fit_sources", ())) != tuple(fit_sources):
        return None
    with np.load(path, allow_pickle=False) as data:
        arrays = {kind: {k.split(":", 1)[1]: data[k] for k in data.files if k.split(":", 1)[0] == kind}
                  for kind in KINDS}
    return arrays | {"records": meta["records"], "skipped": meta["skipped"], "round_trip": meta.get("round_trip", 0),
                     "fit_sources": list(meta.get("fit_sources", ()))}


def write_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"{kind}:{k}": v for kind in KINDS for k, v in data[kind].items()})
    meta = {key: data[key] for key in ("records", "skipped", "round_trip")} | {
        "fit_sources": list(data.get("fit_sources", ()))}
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
