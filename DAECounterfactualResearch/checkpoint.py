"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is two files written atomically: ``checkpoint.safetensors`` (model, EMA and optimizer tensors) and
``checkpoint.json`` (step, optimizer hyper-parameters, the run's history). Both carry the step, and a pair whose
steps disagree (a crash between the two writes) is refused rather than silently mixed. A checkpoint without
optimizer tensors (a GPU window's weights, ``gpu_window.restore_run``) resumes with a fresh optimizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from DAECounterfactualLib.errors import DAECFError
from DAECounterfactualLib.io.files import atomic_write

TENSORS = "checkpoint.safetensors"
META = "checkpoint.json"


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], param_groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": param_groups}


def save_checkpoint(folder: Path, step: int, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    optim_tensors, param_groups = _flatten_optimizer(optimizer.state_dict())
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= {f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()}
    write_checkpoint(folder, step, tensors | optim_tensors, {**meta, "param_groups": param_groups})


def write_checkpoint(folder: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """The checkpoint pair of ``tensors`` (``model.*``, ``ema.*``, and ``optim.*`` where the optimizer's state
    is kept) and ``meta``, both stamped with ``step``."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / TENSORS, lambda tmp: save_file(tensors, tmp, metadata={"step": str(step)}))
    payload = {**meta, "step": step}
    atomic_write(folder / META, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=1)))


def load_checkpoint(folder: Path, model: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    model_config: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Restore in place and return the JSON metadata; None when the folder holds no checkpoint. A checkpoint of
    another ``model_config`` (when given) is a ValueError, raised before any weight is loaded."""
    if not (folder / META).exists() and not (folder / TENSORS).exists():
        return None
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        tensors = load_file(folder / TENSORS)
        with safe_open(folder / TENSORS, "pt") as handle:
            tensor_step = int(handle.metadata()["step"])
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        raise DAECFError(f"{folder}: unreadable checkpoint ({exc}); delete it to start afresh") from None
    if tensor_step != meta.get("step"):
        raise DAECFError(f"{folder}: checkpoint files disagree (step {tensor_step} vs {meta.get('step')})")
    if model_config is not None and meta.get("model_config") != model_config:
        raise ValueError(f"{folder}: checkpoint was trained with another model config")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    model.load_state_dict(part("model."), strict=True)
    ema.load_state_dict(part("ema."), strict=True)
    optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    if optim:
        optimizer.load_state_dict(_unflatten_optimizer(optim, meta["param_groups"]))
    else:  # weights only (what a GPU window returns): AdamW's moments start afresh at this step
        meta["optimizer_restarted_at"] = meta["step"]
    return meta
