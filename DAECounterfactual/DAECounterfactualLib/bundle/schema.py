"""The JSON schema of the bundle files (config, task, latent statistics, OOD and centring detectors) and its
check."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..model.centring_detector import CENTRED_VS_OFF
from ..model.ood import MAHALANOBIS
from ..model.schedule import SPACINGS
from .domain import TARGET_KINDS

# JSON schema of the bundle files, checked before any object is built, so that a string where a number belongs, a
# float where an integer belongs or an unknown probe kind is named instead of coerced (int(2.7) == 2) or crashing
# later. Leaves: a JSON type, or a set of allowed strings; [leaf]: a list of them; "*": any key. Keys the schema
# does not name (metrics, comments) are free; required keys are the loaders' business (missing key ...).
INTEGER, NUMBER, STRING, ANY = "integer", "number", "string", "any"
INTEGERS = [INTEGER]
CONFIG_SCHEMA = {
    "format_version": INTEGER, "name": STRING, "modality": STRING, "description": STRING,
    "model": {"image_size": INTEGER, "in_channels": INTEGER, "base_channels": INTEGER, "channel_mults": INTEGERS,
              "num_res_blocks": INTEGER, "attention_resolutions": INTEGERS, "z_dim": INTEGER,
              "encoder_channel_mults": INTEGERS, "head_channels": INTEGER, "groups": INTEGER, "dropout": NUMBER},
    "diffusion": {"num_train_timesteps": INTEGER, "beta_start": NUMBER, "beta_end": NUMBER, "beta_schedule": STRING},
    "preprocessing": {"kind": STRING, "low": NUMBER, "high": NUMBER},
    "patch": {"size_px": INTEGER, "spacing_mm": NUMBER, "rows": {"axial", "spine"}},
    "presets": {"*": {"invert": INTEGER, "decode": INTEGER, "refine": INTEGER, "refine_tol": NUMBER,
                      "spacing": set(SPACINGS), "anderson": INTEGER}},
    "trained_on": {"target_kind": set(TARGET_KINDS), "levels": [STRING], "units": STRING},
}
TASK_SCHEMA = {
    "name": STRING, "description": STRING, "grade_names": [STRING], "positive_min_grade": INTEGER,
    "positive_rule": STRING, "metrics": ANY, "edit_gain": NUMBER,
    "real_data": {"measured_on": STRING, "figures": {"*": NUMBER}, "targets": {"*": NUMBER}, "command": STRING},
    "probe": {"kind": {"svm", "logistic"}, "normal": [NUMBER], "bias": NUMBER, "mean": [NUMBER],
              "scale": [NUMBER], "prob_slope": NUMBER, "prob_intercept": NUMBER},
    "calibration": {"method": {"linear", "extremes", "poly"}, "coefficients": [NUMBER], "min_grade": INTEGER,
                    "max_grade": INTEGER, "anchor": NUMBER},
}
LATENT_STATS_SCHEMA = {"mean": [NUMBER], "std": [NUMBER], "ood_threshold": NUMBER, "ood_quantile": NUMBER,
                       "ood_score": STRING}
OOD_DETECTOR_SCHEMA = {"kind": {MAHALANOBIS}, "z_dim": INTEGER, "ood_threshold": NUMBER, "ood_quantile": NUMBER,
                       "ood_score": STRING, "fit": ANY, "fitted_on": STRING}
CENTRING_DETECTOR_SCHEMA = {"kind": {CENTRED_VS_OFF}, "z_dim": INTEGER, "components": INTEGER, "off_mm": NUMBER,
                            "score": STRING, "fitted_on": STRING}


def check_schema(value: Any, schema: Any, where: str) -> None:
    """Raise ValueError naming the first key (dotted path) whose value does not fit ``schema``."""
    if schema == ANY:
        return
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where or 'the file'} must be a JSON object, got {type(value).__name__}")
        for key, item in value.items():
            if key in schema or "*" in schema:
                check_schema(item, schema.get(key, schema.get("*")), f"{where}.{key}" if where else key)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {json.dumps(value)[:40]}")
        for n, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{n}]")
    elif not _fits(value, schema):
        expected = f"one of {sorted(schema)}" if isinstance(schema, set) else f"a finite {schema}"
        raise ValueError(f"{where} must be {expected}, got {json.dumps(value)[:40]}")


def _fits(value: Any, leaf: str | set[str]) -> bool:
    if isinstance(leaf, set):
        return value in leaf
    if leaf == STRING:
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) if leaf == INTEGER else bool(np.isfinite(value))
