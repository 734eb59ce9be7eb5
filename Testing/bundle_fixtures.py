"""A tiny CT bundle around an untrained, seeded DAE (the ``ct_bundle_path`` fixture in conftest.py): its constants
and the exact field its tests sample. For tests of geometry, units, bookkeeping and error handling (the MRML tests,
the robustness tests), which never judge image quality and need no slicer-core for the bundle."""

from __future__ import annotations

import numpy as np

from spine_testdata import field_on_sagittal_patch

PATCH_PX = 16        # the tiny model's image size
PATCH_SPACING = 3.0  # mm: 48 mm fields of view hold a phantom lumbar body
GRADE_NAMES = ("G0", "G1", "G2", "G3")
CT_WINDOW = (-200.0, 800.0)
TRAINED_LEVELS = ("L1", "L2", "L3")  # the test bundle's trained levels: a phantom's vertebrae

GRADIENT = np.array([3.0, -2.0, 4.0])  # HU per mm: a linear field, reproduced exactly by trilinear sampling
FIELD_OFFSET = float(np.mean(CT_WINDOW))
EXTENT_MM = 84.0  # a box this wide holds the 48 mm patch around any point within 5 mm of its centre, any rotation


def tiny_ct_experiment(tmp_path, tasks, **bundle_section):
    """A training set of 48 images (16 cases, grades 0-3) beside an experiment config naming the tiny bundle
    (``bundle_section``: more keys of its bundle section, e.g. presets); returns the config's path."""
    import json

    from DAECounterfactualResearch.datasets import TrainingSet

    rng = np.random.default_rng(0)
    grades = np.repeat(np.arange(4), 12)
    yy = np.linspace(-1, 1, PATCH_PX)[:, None]
    images = np.stack([np.clip(-0.6 + 0.3 * g * (yy > 0) + 0.05 * rng.normal(size=(PATCH_PX, PATCH_PX)), -1, 1)
                       for g in grades])[:, None].astype(np.float16)  # brighter lower half = higher grade
    split = np.where(np.arange(48) % 3 == 0, "val", "train")
    TrainingSet(images, grades, split, (np.arange(48) // 3).astype(str)).save(tmp_path / "dataset.npz")
    experiment = {"bundle": {"name": "tinyct", "preprocessing": {"kind": "ct_window", "low": CT_WINDOW[0],
                                                                 "high": CT_WINDOW[1]},
                             "patch": {"size_px": PATCH_PX, "spacing_mm": PATCH_SPACING}, **bundle_section},
                  "data": {"kind": "training_set", "path": "dataset.npz"}, "tasks": tasks}
    (tmp_path / "experiment.json").write_text(json.dumps(experiment))
    return tmp_path / "experiment.json"


def blob_images(size: int = 16) -> np.ndarray:
    """Four distinct images in [-1, 1]: bright disks of different position and radius on a gentle ramp."""
    yy, xx = np.mgrid[0:size, 0:size] * (16.0 / size)
    disks = [(5, 5, 3), (10, 6, 4), (6, 11, 2.5), (11, 11, 3.5)]
    images = [np.where((xx - cx) ** 2 + (yy - cy) ** 2 < r * r, 0.8, -0.8) + 0.1 * np.sin(xx / 2.0)
              for cx, cy, r in disks]
    return np.stack(images)[:, None].astype(np.float32)


def field_model_input(point) -> np.ndarray:
    """(1, 1, H, W) model input of the exact field on the patch plane through ``point`` (the tiny bundle's window)."""
    field = field_on_sagittal_patch(point, PATCH_PX, PATCH_SPACING, GRADIENT, FIELD_OFFSET)
    return np.clip(2 * (field - CT_WINDOW[0]) / np.ptp(CT_WINDOW) - 1, -1, 1)[None, None]


def write_ct_bundle(model, images: np.ndarray, tiny_config, folder):
    """``model`` as a CT bundle with a 'genant' task whose probe is fitted on the latents of four images."""
    from DAECounterfactualLib.bundle.domain import TrainingDomain
    from DAECounterfactualLib.bundle.spec import BundleConfig, StepPreset, TaskSpec
    from DAECounterfactualLib.bundle.store import write_bundle
    from DAECounterfactualLib.inference.explainer import encode_images
    from DAECounterfactualLib.model.ood import LatentStats
    from DAECounterfactualLib.model.preprocessing import Preprocessing
    from DAECounterfactualResearch.probe_fitting import fit_calibration, fit_probe

    z = encode_images(model, images)
    grades = np.array([1, 3, 0, 2])
    probe = fit_probe(z, grades >= 2, standardize=False, C=10.0)
    task = TaskSpec(name="genant", description="test grades", grade_names=GRADE_NAMES, positive_min_grade=2,
                    probe=probe, calibration=fit_calibration(probe.distance(z), grades, "linear", grade_range=(0, 3)))
    config = BundleConfig(name="tinyct", modality="CT", model=tiny_config,
                          preprocessing=Preprocessing("ct_window", *CT_WINDOW), patch_size_px=PATCH_PX,
                          patch_spacing_mm=PATCH_SPACING,
                          presets={"fast": StepPreset(2, 2), "standard": StepPreset(3, 4)},
                          trained_on=TrainingDomain("vertebra", TRAINED_LEVELS, "HU"))
    stats = LatentStats.from_latents(np.concatenate([z + 0.01 * np.random.default_rng(i).normal(size=z.shape)
                                                     for i in range(50)]))
    return write_bundle(folder / "tinyct", config, model, stats, [task], "test bundle", fp16=False)


def read_as(grades):
    """Grades of an explanation's drawn panels (each grade's counterfactual, then the reflection), as the model
    would give them on encoding them again: for made-up explanations."""
    from DAECounterfactualLib.inference.explainer import Grades

    read = np.asarray(grades)
    return Grades(read * 1.0, read * 0.2, read * 1.0, read, read * 0.0, read < 0)


def rewrite_bundle_file(bundle_path, rel: str, content) -> None:
    """Replace one file of a bundle (a dict is written as JSON) and list it in the manifest again: a bad writer that
    keeps the manifest valid, so that loading must find the fault in the file itself."""
    import json

    from DAECounterfactualLib.bundle.store import _write_manifest

    path = bundle_path / rel
    path.write_bytes(json.dumps(content).encode() if isinstance(content, dict) else content)
    _write_manifest(bundle_path)
