"""Model bundles: a folder holding one trained DAE, its settings, training-set latent statistics and task probes.

    config.json          BundleConfig: architecture, diffusion schedule, modality, preprocessing, patch, step presets,
                         what it was trained on (target kind, levels, units)
    model.safetensors    DAE weights (fp16 or fp32)
    latent_stats.json    mean/std of z_sem over the training set and the z-score OOD threshold
    ood.json             optional, with ood.safetensors: the OOD detector that replaces the z-score (its kind and
    ood.safetensors      threshold; its mean and precision matrix, too large for JSON)
    centring.json        optional, with centring.safetensors: the detector that centres a click along the spine
    centring.safetensors (its two Gaussians' means and precision matrices)
    tasks/<name>.json    TaskSpec: probe, calibration, grade names, positive-class rule
    MODEL_CARD.md        training data, compute, metrics, intended use
    manifest.json        sha256 of every other file

Loading reads every file into memory, checks the manifest, the allowed file types and the JSON schema, and only
then builds anything: a bad bundle raises one BundleError naming the file, and nothing is half-loaded. Only JSON,
safetensors and Markdown are accepted, so nothing is ever unpickled. Tasks are separate files so that adding a
probe never rewrites or copies the DAE.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BundleError
from ..io.files import atomic_write_bytes
from ..model.config import ConfigError, DAEConfig
from ..model.centring_detector import CentringDetector
from ..model.ood import LatentStats, MahalanobisDetector
from .domain import TrainingDomain
from .real_data import RealDataCheck
from .schema import (CENTRING_DETECTOR_SCHEMA, CONFIG_SCHEMA, LATENT_STATS_SCHEMA, OOD_DETECTOR_SCHEMA, TASK_SCHEMA,
                     check_schema)
from .spec import FORMAT_VERSION, Bundle, BundleConfig, TaskSpec

MANIFEST = "manifest.json"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LATENT_STATS = "latent_stats.json"
OOD_DETECTOR = "ood.json"
OOD_ARRAYS = "ood.safetensors"
CENTRING_DETECTOR = "centring.json"
CENTRING_ARRAYS = "centring.safetensors"
MODEL_CARD = "MODEL_CARD.md"
TASK_DIR = "tasks"
ALLOWED_SUFFIXES = (".json", ".safetensors", ".md")


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_files(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise BundleError(f"{root / rel}: symbolic links are not allowed in a bundle")
        if path.is_dir():
            continue
        if not rel.endswith(ALLOWED_SUFFIXES):
            raise BundleError(f"{root / rel}: file type not allowed in a bundle (only {', '.join(ALLOWED_SUFFIXES)})")
        files[rel] = path.read_bytes()
    return files


def _verify_manifest(root: Path, files: dict[str, bytes]) -> str:
    if MANIFEST not in files:
        raise BundleError(f"{root / MANIFEST}: manifest missing")
    manifest = _parse_json(root, MANIFEST, files[MANIFEST])
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{root / MANIFEST}: 'files' must map file names to sha256")
    for rel, digest in sorted(listed.items()):
        if rel not in files:
            raise BundleError(f"{root / rel}: listed in the manifest but missing")
        if _sha256(files[rel]) != digest:
            raise BundleError(f"{root / rel}: sha256 does not match the manifest (file truncated or modified)")
    unlisted = sorted(set(files) - set(listed) - {MANIFEST})
    if unlisted:
        raise BundleError(f"{root / unlisted[0]}: file not listed in the manifest")
    for required in (CONFIG, WEIGHTS, LATENT_STATS, MODEL_CARD):
        if required not in listed:
            raise BundleError(f"{root / required}: required bundle file missing")
    return _sha256(files[MANIFEST])


def _parse_json(root: Path, rel: str, data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{root / rel}: not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise BundleError(f"{root / rel}: expected a JSON object")
    return parsed




def _build(root: Path, rel: str, data: bytes, factory, schema: dict[str, Any]):
    try:
        parsed = _parse_json(root, rel, data)
        check_schema(parsed, schema, "")
        return factory(parsed)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise BundleError(f"{root / rel}: invalid content: {detail}") from None


def _check_dimensions(root: Path, config: BundleConfig, stats: LatentStats, tasks: dict[str, TaskSpec],
                      detector: MahalanobisDetector | None = None, centring: CentringDetector | None = None) -> None:
    z_dim = config.model.z_dim
    for rel, ood in ((LATENT_STATS, stats), (OOD_DETECTOR, detector), (CENTRING_DETECTOR, centring)):
        if ood is not None and ood.mean.shape[0] != z_dim:
            raise BundleError(f"{root / rel}: {ood.mean.shape[0]} dimensions, model z_dim is {z_dim}")
    for name, task in tasks.items():
        if task.probe.dim != z_dim:
            raise BundleError(f"{root / TASK_DIR / (name + '.json')}: probe has {task.probe.dim} dimensions, "
                              f"model z_dim is {z_dim}")


def _float32_tensors(data: bytes) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file, read with numpy alone (an 8-byte little-endian header length, a
    JSON header giving each tensor's dtype, shape and byte range, then the bytes), so that a fresh Slicer lists
    bundles without torch or safetensors. ValueError (or KeyError, TypeError) on anything else."""
    if len(data) < 8:
        raise ValueError("shorter than its 8-byte header length")
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length].decode("utf-8"))
    body = data[8 + length:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"tensor {name!r} is {info['dtype']}, expected F32")
        start, end = (int(v) for v in info["data_offsets"])
        shape = [int(n) for n in info["shape"]]
        if not 0 <= start <= end <= len(body) or end - start != 4 * int(np.prod(shape)):
            raise ValueError(f"tensor {name!r}: byte range {start}..{end} does not hold shape {shape}")
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(shape)
    return tensors


# A detector is a JSON file (kind, settings) and a safetensors file of its arrays: (JSON, arrays, class, schema, name)
_DETECTORS = {"ood": (OOD_DETECTOR, OOD_ARRAYS, MahalanobisDetector, OOD_DETECTOR_SCHEMA, "OOD detector"),
              "centring": (CENTRING_DETECTOR, CENTRING_ARRAYS, CentringDetector, CENTRING_DETECTOR_SCHEMA,
                           "centring detector")}


def _load_detector(root: Path, files: dict[str, bytes], which: str = "ood"):
    """The bundle's ``which`` detector (its JSON file and its arrays' safetensors), None if it has none."""
    json_rel, arrays_rel, kind, schema, name = _DETECTORS[which]
    present = [rel for rel in (json_rel, arrays_rel) if rel in files]
    if not present:
        return None
    if len(present) == 1:
        missing = arrays_rel if present[0] == json_rel else json_rel
        raise BundleError(f"{root / missing}: missing; the {name} in {present[0]} needs both files")
    try:
        arrays = _float32_tensors(files[arrays_rel])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{root / arrays_rel}: not readable as float32 safetensors ({exc})") from None
    return _build(root, json_rel, files[json_rel], lambda data: kind.from_parts(data, arrays), schema)


def _load_model(root: Path, data: bytes, config: DAEConfig):
    """The DAE built from config.json with the verified weights, float32, eval mode, on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from ..model.networks import make_model

    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{root / WEIGHTS}: not readable as safetensors ({exc})") from None
    model = make_model(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise BundleError(f"{root / WEIGHTS}: weights do not match config.json ({' '.join(first)})") from None
    return model.eval()


def load_bundle(path: str | os.PathLike, load_weights: bool = True) -> Bundle:
    """Verify and load a bundle folder. Raises BundleError naming the first bad file."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: bundle folder not found")
    files = _read_files(root)
    manifest_sha = _verify_manifest(root, files)
    config = _build(root, CONFIG, files[CONFIG], BundleConfig.from_dict, CONFIG_SCHEMA)
    stats = _build(root, LATENT_STATS, files[LATENT_STATS], LatentStats.from_dict, LATENT_STATS_SCHEMA)
    tasks = {}
    for rel in sorted(r for r in files if r.startswith(f"{TASK_DIR}/")):
        task = _build(root, rel, files[rel], TaskSpec.from_dict, TASK_SCHEMA)
        if rel != f"{TASK_DIR}/{task.name}.json":
            raise BundleError(f"{root / rel}: task name {task.name!r} does not match its file name")
        tasks[task.name] = task
    detector, centring = _load_detector(root, files, "ood"), _load_detector(root, files, "centring")
    _check_dimensions(root, config, stats, tasks, detector, centring)
    model = _load_model(root, files[WEIGHTS], config.model) if load_weights else None
    return Bundle(path=root, config=config, latent_stats=stats, tasks=tasks,
                  model_card=files[MODEL_CARD].decode("utf-8", errors="replace"),
                  manifest_sha256=manifest_sha, model=model, ood_detector=detector, centring_detector=centring)


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=False) + "\n").encode("utf-8")


def _write_manifest(root: Path) -> None:
    files = {p.relative_to(root).as_posix(): _sha256(p.read_bytes())
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}
    atomic_write_bytes(root / MANIFEST, _json_bytes({"format_version": FORMAT_VERSION, "files": files}))


def _write_detector(root: Path, detector: MahalanobisDetector | CentringDetector, which: str = "ood") -> None:
    from safetensors.numpy import save

    json_rel, arrays_rel, _, _, name = _DETECTORS[which]
    atomic_write_bytes(root / arrays_rel, save(detector.arrays(), metadata={"daecf": name.lower()}))
    atomic_write_bytes(root / json_rel, _json_bytes(detector.to_dict()))


def write_bundle(path: str | os.PathLike, config: BundleConfig, model, latent_stats: LatentStats,
                 tasks: list[TaskSpec], model_card: str, fp16: bool = True, overwrite: bool = False,
                 ood_detector: MahalanobisDetector | None = None) -> Path:
    """Write a complete bundle into a temporary sibling folder, then move it into place (never half-written)."""
    from safetensors.torch import save

    root = Path(path)
    if root.exists() and not overwrite:
        raise BundleError(f"{root}: already exists (pass overwrite=True to replace it)")
    import torch

    dtype = torch.float16 if fp16 else torch.float32
    state = {k: v.detach().cpu().to(dtype).contiguous() for k, v in model.state_dict().items()}
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        (staging / CONFIG).write_bytes(_json_bytes(config.to_dict()))
        # one metadata key: safetensors orders several keys arbitrarily, and identical weights should give
        # identical bytes so that re-bundling does not churn the repository
        (staging / WEIGHTS).write_bytes(save(state, metadata={"daecf": json.dumps({"bundle": config.name, "dtype": str(dtype)}, sort_keys=True)}))
        (staging / LATENT_STATS).write_bytes(_json_bytes(latent_stats.to_dict()))
        if ood_detector is not None:
            _check_dimensions(staging, config, latent_stats, {}, ood_detector)
            _write_detector(staging, ood_detector)
        (staging / MODEL_CARD).write_text(model_card, encoding="utf-8")
        for task in tasks:
            _check_dimensions(staging, config, latent_stats, {task.name: task})
            (staging / TASK_DIR).mkdir(exist_ok=True)
            (staging / TASK_DIR / f"{task.name}.json").write_bytes(_json_bytes(task.to_dict()))
        _write_manifest(staging)
        staging.chmod(0o755)  # mkdtemp creates 0700
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def add_task(path: str | os.PathLike, task: TaskSpec, overwrite: bool = False, model_card: str | None = None) -> None:
    """Add (or replace) one task probe in a verified bundle, optionally with a new model card; the DAE weights
    are neither read nor copied."""
    bundle = load_bundle(path, load_weights=False)
    if task.name in bundle.tasks and not overwrite:
        raise BundleError(f"{bundle.path}: task {task.name!r} already exists (pass overwrite=True)")
    _check_dimensions(bundle.path, bundle.config, bundle.latent_stats, {task.name: task})
    atomic_write_bytes(bundle.path / TASK_DIR / f"{task.name}.json", _json_bytes(task.to_dict()))
    if model_card is not None:
        atomic_write_bytes(bundle.path / MODEL_CARD, model_card.encode("utf-8"))
    _write_manifest(bundle.path)


def set_real_data(path: str | os.PathLike, task: str, check: RealDataCheck | None,
                  model_card: str | None = None) -> None:
    """Record (or, with None, remove) a task's acceptance on real patients in a verified bundle; its probe and
    calibration are left as they are, and its grades carry ``check.caution`` from then on."""
    bundle = load_bundle(path, load_weights=False)
    add_task(bundle.path, replace(bundle.task(task), real_data=check), overwrite=True, model_card=model_card)


def update_config(path: str | os.PathLike, model_card: str | None = None, **fields) -> None:
    """Replace fields of a verified bundle's config (``trained_on``, ``presets``; checked as on loading),
    optionally with a new model card; weights, tasks and statistics are left as they are."""
    bundle = load_bundle(path, load_weights=False)
    config = replace(bundle.config, **fields)
    atomic_write_bytes(bundle.path / CONFIG, _json_bytes(config.to_dict()))
    if model_card is not None:
        atomic_write_bytes(bundle.path / MODEL_CARD, model_card.encode("utf-8"))
    _write_manifest(bundle.path)


def set_training_domain(path: str | os.PathLike, domain: TrainingDomain, model_card: str | None = None) -> None:
    """Record what a verified bundle was trained on in its config (replacing what it said)."""
    update_config(path, model_card, trained_on=domain)


def set_ood_detector(path: str | os.PathLike, detector: MahalanobisDetector, model_card: str | None = None) -> None:
    """Give a verified bundle an OOD detector (replacing any it has), optionally with a new model card; the DAE
    weights, the tasks and the z-score statistics are left as they are."""
    bundle = load_bundle(path, load_weights=False)
    _check_dimensions(bundle.path, bundle.config, bundle.latent_stats, {}, detector)
    _write_detector(bundle.path, detector)
    if model_card is not None:
        atomic_write_bytes(bundle.path / MODEL_CARD, model_card.encode("utf-8"))
    _write_manifest(bundle.path)


def set_centring_detector(path: str | os.PathLike, detector: CentringDetector, model_card: str | None = None) -> None:
    """Give a verified bundle a centring detector (replacing any it has), optionally with a new model card; nothing
    else of the bundle changes."""
    bundle = load_bundle(path, load_weights=False)
    _check_dimensions(bundle.path, bundle.config, bundle.latent_stats, {}, centring=detector)
    _write_detector(bundle.path, detector, "centring")
    if model_card is not None:
        atomic_write_bytes(bundle.path / MODEL_CARD, model_card.encode("utf-8"))
    _write_manifest(bundle.path)
