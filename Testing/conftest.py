"""Shared fixtures: a tiny DAE config, a DAE overfitted on four small images (trained once per session) and its
bundle, a tiny CT bundle around an untrained DAE, and the main() of a script."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bundle_fixtures import PATCH_PX, blob_images, write_ct_bundle

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def pytest_configure(config):
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def script_main():
    """``script_main("build_dataset")``: the ``main(argv)`` of scripts/build_dataset.py (or scripts/studies/...), to
    run a documented command in-process; what it is built of is imported from DAECounterfactualResearch."""
    import runpy

    def load(name: str):
        (path,) = SCRIPTS.rglob(f"{name}.py")
        return runpy.run_path(str(path), run_name=f"script_{name}")["main"]

    return load


@pytest.fixture(scope="session")
def tiny_config():
    from DAECounterfactualLib.model.config import DAEConfig

    return DAEConfig(image_size=16, in_channels=1, base_channels=16, channel_mults=(1, 2),
                     encoder_channel_mults=(1, 2), attention_resolutions=(8,), z_dim=32, head_channels=16,
                     num_res_blocks=1, groups=8)


@pytest.fixture(scope="session")
def overfit_dae(tiny_config):
    """(model, images): a tiny DAE trained for 600 steps on the four blob images, once per session."""
    import torch

    from DAECounterfactualLib.model.diffusion import diffusion_loss
    from DAECounterfactualLib.model.schedule import NoiseSchedule
    from DAECounterfactualLib.model.networks import make_model

    torch.manual_seed(0)
    model = make_model(tiny_config)
    images = torch.from_numpy(blob_images())
    schedule = NoiseSchedule()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(600):
        loss = diffusion_loss(model, images.repeat(8, 1, 1, 1), schedule, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), images


@pytest.fixture(scope="session")
def blob_bundle(overfit_dae, tiny_config, tmp_path_factory):
    """The overfitted DAE as a CT bundle (16 px at 6 mm) whose task 'size' grades the four disks by radius."""
    from DAECounterfactualLib.bundle.spec import BundleConfig, StepPreset, TaskSpec
    from DAECounterfactualLib.bundle.store import write_bundle
    from DAECounterfactualLib.inference.explainer import encode_images
    from DAECounterfactualLib.model.ood import LatentStats
    from DAECounterfactualLib.model.preprocessing import Preprocessing
    from DAECounterfactualResearch.probe_fitting import fit_calibration, fit_probe

    model, images = overfit_dae
    z = encode_images(model, images.numpy())
    grades = np.array([1, 3, 0, 2])  # radii 3, 4, 2.5, 3.5
    probe = fit_probe(z, grades >= 2, standardize=False, C=10.0)
    calibration = fit_calibration(probe.distance(z), grades, "linear", grade_range=(0, 3))
    task = TaskSpec(name="size", description="disk size", grade_names=("S0", "S1", "S2", "S3"),
                    positive_min_grade=2, probe=probe, calibration=calibration)
    presets = {"fast": StepPreset(5, 5), "standard": StepPreset(10, 10, refine=3), "reference": StepPreset(50, 50)}
    config = BundleConfig(name="blobs", modality="CT", model=tiny_config,
                          preprocessing=Preprocessing("ct_window", -1000, 1500), patch_size_px=16,
                          patch_spacing_mm=6.0, presets=presets)
    rng = np.random.default_rng(0)
    stats = LatentStats.from_latents(np.concatenate([z + 0.01 * rng.normal(size=z.shape) for _ in range(50)]))
    return write_bundle(tmp_path_factory.mktemp("bundle") / "blobs", config, model, stats, [task], "card",
                        fp16=False)


@pytest.fixture(scope="session")
def ct_bundle_path(tiny_config, tmp_path_factory):
    """A bundle around an untrained, seeded tiny DAE. The MRML tests check geometry, units, node bookkeeping and
    consistency with the pipeline, never image quality, so they skip the session's training fixture and stay
    fast when run alone."""
    import torch

    from DAECounterfactualLib.model.networks import make_model

    torch.manual_seed(0)
    model = make_model(tiny_config).eval()
    images = np.random.default_rng(0).uniform(-1, 1, size=(4, 1, PATCH_PX, PATCH_PX)).astype(np.float32)
    return write_ct_bundle(model, images, tiny_config, tmp_path_factory.mktemp("ctbundle"))
