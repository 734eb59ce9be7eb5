"""Every experiment config under scripts/configs reads as train_dae.py, make_bundle.py and the GPU window read it: a
typo found in a GPU window costs the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.networks import make_model
from DAECounterfactualResearch.experiment import REPO, load_experiment
from DAECounterfactualResearch.gpu_window import MAX_FILES, window_files
from DAECounterfactualResearch.task_fitting import TaskRecipe
from DAECounterfactualResearch.training import TrainConfig

CONFIGS = sorted((REPO / "scripts" / "configs").glob("*.json"))


def test_the_configs_are_found():
    assert {"vcf-ct", "vcf-ct-real", "vertebra-mri", "disc-mri", "dr-retina"} <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_an_experiment_config_builds_its_model_training_tasks_and_window(path: Path):
    experiment = load_experiment(path)
    assert experiment.name == path.stem  # the run folder, the bundle and the window's files are named after it
    model = make_model(DAEConfig.from_dict(experiment.model))
    TrainConfig(**experiment.train)
    assert [TaskRecipe.from_config(t).name for t in experiment.tasks]
    assert experiment.data["kind"] in ("training_set", "medmnist") and experiment.data["path"]
    assert window_files([path]) <= MAX_FILES
    if experiment.warm_start:  # the weights exist and fit this architecture, as the window will load them
        weights = REPO / experiment.warm_start
        assert weights.is_file(), f"{path.name}: warm_start {experiment.warm_start} is missing"
        model.load_state_dict({k: v.float() for k, v in load_file(weights).items()})


def test_a_script_reports_an_expected_error_in_one_line_with_status_2(capsys):
    from DAECounterfactualLib.errors import BundleError
    from DAECounterfactualResearch.experiment import run_script

    def main() -> int:
        raise BundleError("/tmp/x: neither a bundle folder nor a bundled model name")

    with pytest.raises(SystemExit) as stopped:
        run_script(main)
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "error: /tmp/x: neither a bundle folder nor a bundled model name\n"
