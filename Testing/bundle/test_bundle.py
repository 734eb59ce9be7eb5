import json

import numpy as np
import pytest
import torch

from DAECounterfactualLib.bundle.registry import available_bundles, resolve_bundle
from DAECounterfactualLib.bundle.spec import BundleConfig, TaskSpec
from DAECounterfactualLib.bundle.store import add_task, load_bundle, write_bundle
from DAECounterfactualLib.cli.commands import main as cli_main
from DAECounterfactualLib.errors import BundleError
from DAECounterfactualLib.model.networks import make_model
from DAECounterfactualLib.model.ood import LatentStats
from DAECounterfactualLib.model.preprocessing import Preprocessing
from DAECounterfactualResearch.probe_fitting import fit_calibration, fit_probe


def _task(name, z_dim, seed=0, grades=("G0", "G1", "G2", "G3"), positive=2):
    rng = np.random.default_rng(seed)
    grade = rng.integers(0, len(grades), 80)
    z = rng.normal(size=(80, z_dim)) + grade[:, None] * 0.5
    probe = fit_probe(z, grade >= positive)
    calibration = fit_calibration(probe.distance(z), grade, "linear", grade_range=(0, len(grades) - 1))
    return TaskSpec(name=name, description="test task", grade_names=grades, positive_min_grade=positive,
                    probe=probe, calibration=calibration)


@pytest.fixture
def bundle_dir(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = make_model(tiny_config)
    for p in model.parameters():  # non-zero everywhere so fp16 storage is really exercised
        torch.nn.init.normal_(p, std=0.05)
    config = BundleConfig(name="tiny", modality="CT", model=tiny_config,
                          preprocessing=Preprocessing("ct_window", -1000, 1500), patch_size_px=16,
                          patch_spacing_mm=6.0)
    stats = LatentStats.from_latents(np.random.default_rng(0).normal(size=(2000, tiny_config.z_dim)))
    path = write_bundle(tmp_path / "tiny", config, model, stats, [_task("genant", tiny_config.z_dim)],
                        "# tiny\nNot for clinical use.\n")
    return path, model


def test_round_trip_keeps_everything(bundle_dir, tiny_config):
    path, model = bundle_dir
    bundle = load_bundle(path)
    assert bundle.config.model == tiny_config
    assert bundle.config.presets["reference"].invert == 250
    assert set(bundle.tasks) == {"genant"} and bundle.task("genant").grade_names == ("G0", "G1", "G2", "G3")
    assert bundle.bundle_id.startswith("tiny@")
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        original = model(x, torch.tensor([10.0, 900.0]), model.encode(x))
        loaded = bundle.model(x, torch.tensor([10.0, 900.0]), bundle.model.encode(x))
    torch.testing.assert_close(loaded, original, atol=2e-3, rtol=2e-3)  # fp16 storage
    assert all(p.dtype == torch.float32 for p in bundle.model.parameters())


def test_fp32_bundle_is_exact(tmp_path, bundle_dir):
    path, model = bundle_dir
    bundle = load_bundle(path)
    exact = write_bundle(tmp_path / "exact", bundle.config, model, bundle.latent_stats,
                         list(bundle.tasks.values()), bundle.model_card, fp16=False)
    for name, value in model.state_dict().items():
        assert torch.equal(load_bundle(exact).model.state_dict()[name], value)


def test_tampered_file_is_refused_naming_it(bundle_dir):
    path, _ = bundle_dir
    task_file = path / "tasks" / "genant.json"
    data = json.loads(task_file.read_text())
    data["probe"]["bias"] += 1.0
    task_file.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"tasks/genant\.json: sha256 does not match"):
        load_bundle(path)


def test_truncated_weights_are_refused(bundle_dir):
    path, _ = bundle_dir
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(BundleError, match=r"model\.safetensors: sha256 does not match"):
        load_bundle(path)


@pytest.mark.parametrize("name, message", [
    ("model.safetensors", "listed in the manifest but missing"),
    ("manifest.json", "manifest missing"),
])
def test_missing_file_is_refused(bundle_dir, name, message):
    path, _ = bundle_dir
    (path / name).unlink()
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


@pytest.mark.parametrize("name", ["model.pt", "probe.pkl", "tasks/extra.npy"])
def test_pickle_capable_files_are_refused(bundle_dir, name):
    path, _ = bundle_dir
    (path / name).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BundleError, match="file type not allowed"):
        load_bundle(path)


def test_unlisted_file_is_refused(bundle_dir):
    path, _ = bundle_dir
    (path / "tasks" / "sneaky.json").write_text("{}")
    with pytest.raises(BundleError, match=r"sneaky\.json: file not listed in the manifest"):
        load_bundle(path)


def _rewrite_with_valid_manifest(path, rel, mutate):
    """Change a file and re-sign the manifest: only the schema check can catch it now."""
    from bundle_fixtures import rewrite_bundle_file

    data = json.loads((path / rel).read_text())
    mutate(data)
    rewrite_bundle_file(path, rel, data)


@pytest.mark.parametrize("rel, mutate, message", [
    ("config.json", lambda d: d["model"].update(z_dim=64), r"latent_stats\.json: 32 dimensions, model z_dim is 64"),
    ("config.json", lambda d: d["patch"].update(size_px=32), r"config\.json: .*differs from model image_size"),
    ("config.json", lambda d: d.pop("modality"), r"config\.json: .*missing key 'modality'"),
    ("config.json", lambda d: d["presets"]["fast"].update(invert=0), r"config\.json: .*invert steps must be"),
    ("config.json", lambda d: d["presets"]["fast"].update(refine=-1), r"config\.json: .*refine must be"),
    ("config.json", lambda d: d["presets"]["fast"].update(decode=10**6), r"config\.json: .*decode steps must be"),
    ("config.json", lambda d: d["model"].update(attention_resolutions=[5]), r"config\.json: .*match no UNet level"),
    ("tasks/genant.json", lambda d: d["probe"].update(normal=[1.0] * 5), r"genant\.json: .*probe normal, mean"),
    ("tasks/genant.json", lambda d: d.update(grade_names=list("ABCDE")), r"genant\.json: .*calibration range"),
    ("latent_stats.json", lambda d: d.update(ood_threshold=-1), r"stats\.json: .*ood_threshold must be positive"),
    # types and ranges of the JSON schema: named, never coerced
    ("config.json", lambda d: d["model"].update(z_dim="32"), r"config\.json: .*model\.z_dim must be a finite integer, "
                                                              r"got \"32\""),
    ("config.json", lambda d: d["patch"].update(size_px=16.7), r"patch\.size_px must be a finite integer, got 16\.7"),
    ("config.json", lambda d: d["presets"]["fast"].update(invert=True), r"presets\.fast\.invert must be a finite int"),
    ("config.json", lambda d: d["diffusion"].update(num_train_timesteps=40),
     r"config\.json: .*preset 'standard': 50 DDIM steps exceed the 40 timesteps bundle 'tiny' was trained with"),
    ("config.json", lambda d: d.update(model=[]), r"config\.json: .*model must be a JSON object"),
    ("tasks/genant.json", lambda d: d["probe"].update(kind="forest"), r"probe\.kind must be one of \['logistic', 'svm'\]"),
    ("tasks/genant.json", lambda d: d["calibration"].update(method="spline"), r"calibration\.method must be one of"),
    ("tasks/genant.json", lambda d: d["calibration"].update(max_grade=3.5), r"calibration\.max_grade must be a finite "
                                                                            r"integer"),
    ("tasks/genant.json", lambda d: d["probe"]["normal"].__setitem__(3, "1"), r"probe\.normal\[3\] must be a finite"),
    ("tasks/genant.json", lambda d: d["probe"].update(normal=[1.0] * 31, mean=[0.0] * 31, scale=[1.0] * 31),
     r"genant\.json: probe has 31 dimensions, model z_dim is 32"),
    ("tasks/genant.json", lambda d: d.update(grade_names="G0G1"), r"grade_names must be a list"),
    ("latent_stats.json", lambda d: d["std"].__setitem__(0, float("inf")), r"stats\.json: .*std\[0\] must be a finite"),
    ("latent_stats.json", lambda d: d.update(ood_quantile=99.5), r"stats\.json: .*ood_quantile must lie in \(0, 1\)"),
    ("tasks/genant.json", lambda d: d.update(edit_gain="2"), r"edit_gain must be a finite number"),
    ("tasks/genant.json", lambda d: d.update(edit_gain=0.5), r"genant\.json: .*edit_gain must lie in \[1, 50"),
    ("config.json", lambda d: d.update(trained_on={"target_kind": "vertebrae"}),
     r"config\.json: .*trained_on\.target_kind must be one of \['disc', 'image', 'vertebra'\]"),
    ("config.json", lambda d: d.update(trained_on={"target_kind": "vertebra", "levels": "L1-L5"}),
     r"trained_on\.levels must be a list"),
    ("config.json", lambda d: d.update(trained_on={"target_kind": "disc", "levels": ["L4"]}),
     r"config\.json: .*trained_on\.levels \['L4'\] are not disc level names"),
    ("config.json", lambda d: d.update(trained_on={"levels": ["L4"]}), r"config\.json: .*missing key 'target_kind'"),
])
def test_schema_violations_are_refused_naming_the_file(bundle_dir, rel, mutate, message):
    path, _ = bundle_dir
    _rewrite_with_valid_manifest(path, rel, mutate)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_weights_that_do_not_match_the_config_are_refused(bundle_dir):
    path, _ = bundle_dir
    _rewrite_with_valid_manifest(path, "config.json", lambda d: d["model"].update(num_res_blocks=2))
    with pytest.raises(BundleError, match=r"model\.safetensors: weights do not match config\.json"):
        load_bundle(path)


def test_adding_a_task_never_touches_the_dae(bundle_dir, tiny_config):
    path, _ = bundle_dir
    weights_before = (path / "model.safetensors").read_bytes()
    add_task(path, _task("binary", tiny_config.z_dim, seed=1, grades=("absent", "present"), positive=1))
    bundle = load_bundle(path)
    assert set(bundle.tasks) == {"genant", "binary"}
    assert (path / "model.safetensors").read_bytes() == weights_before
    assert len(list(path.rglob("*.safetensors"))) == 1
    with pytest.raises(BundleError, match="already exists"):
        add_task(path, _task("binary", tiny_config.z_dim))
    with pytest.raises(BundleError, match="probe has 8 dimensions"):
        add_task(path, _task("small", 8))


def test_new_presets_replace_the_configs_and_the_cards_line_and_nothing_else(bundle_dir):
    from DAECounterfactualLib.bundle.spec import StepPreset
    from DAECounterfactualLib.bundle.store import update_config
    from DAECounterfactualResearch.model_card import presets_card_line, with_presets_line

    path, _ = bundle_dir
    before = load_bundle(path)
    unchanged = {rel: (path / rel).read_bytes() for rel in ("model.safetensors", "latent_stats.json")}
    presets = {"fast": StepPreset(6, 6, 12, 0.002, "quadratic", anderson=2), "reference": StepPreset(20, 10)}
    card = "# x\n" + presets_card_line(before.config) + "\n- other line"
    config = before.config.__class__(**{**vars(before.config), "presets": presets})
    update_config(path, with_presets_line(card, config), presets=presets)
    after = load_bundle(path)
    assert after.config.presets == presets and after.config.trained_on == before.config.trained_on
    assert after.tasks.keys() == before.tasks.keys() and after.bundle_id != before.bundle_id
    assert all((path / rel).read_bytes() == data for rel, data in unchanged.items())
    lines = after.model_card.split("\n")
    assert lines[0] == "# x" and lines[2] == "- other line"
    assert "fast 6×≤13/6 quadratic tol 0.002 AA2" in lines[1] and "AAm: Anderson mixing" in lines[1]
    with pytest.raises(ValueError, match="quadratic spacing cannot place 900"):
        update_config(path, presets={"fast": StepPreset(900, 10, spacing="quadratic")})
    assert load_bundle(path).config.presets == presets


def test_writing_over_an_existing_bundle_needs_consent(bundle_dir):
    path, model = bundle_dir
    bundle = load_bundle(path)
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(path, bundle.config, model, bundle.latent_stats, [], bundle.model_card)
    assert load_bundle(path).tasks  # the refused write left the bundle intact


def test_ood_score_flags_far_latents(bundle_dir):
    path, _ = bundle_dir
    stats = load_bundle(path, load_weights=False).latent_stats
    inside = np.random.default_rng(1).normal(size=(500, 32))
    assert stats.is_ood(inside).mean() < 0.03
    assert stats.is_ood(inside * 4).all()


def test_bundles_resolve_by_name_and_path(bundle_dir, monkeypatch):
    path, _ = bundle_dir
    monkeypatch.setenv("DAECF_MODELS", str(path.parent))
    assert available_bundles()["tiny"] == path
    assert resolve_bundle("tiny") == path and resolve_bundle(path) == path
    with pytest.raises(BundleError, match="neither a bundle folder nor a bundled model name"):
        resolve_bundle("no-such-model")


def test_cli_verify_reports_ok_and_errors(bundle_dir, capsys):
    path, _ = bundle_dir
    assert cli_main(["verify", str(path)]) == 0
    assert "tiny@" in capsys.readouterr().out
    (path / "MODEL_CARD.md").write_text("changed")
    assert cli_main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert "MODEL_CARD.md: sha256 does not match" in err and "Traceback" not in err


def test_user_step_counts_are_checked_against_the_model(tiny_config):
    """What the Logic and ``daecf explain --steps`` pass to the Explainer: 0, absurd or beyond the trained timesteps
    is an InputError before any diffusion step runs."""
    from DAECounterfactualLib.bundle.spec import StepPreset
    from DAECounterfactualLib.model.schedule import DiffusionConfig
    from DAECounterfactualLib.errors import InputError

    config = BundleConfig(name="short", modality="CT", model=tiny_config, preprocessing=Preprocessing(),
                          patch_size_px=16, patch_spacing_mm=1.0, diffusion=DiffusionConfig(num_train_timesteps=100),
                          presets={"fast": StepPreset(10, 10)})
    assert config.preset("fast") == StepPreset(10, 10) and config.preset(StepPreset(100, 3)) == StepPreset(100, 3)
    with pytest.raises(InputError, match="steps: 500 DDIM steps exceed the 100 timesteps bundle 'short' was trained"):
        config.preset(StepPreset(500, 5))
    with pytest.raises(InputError, match="unknown quality preset 'slow'; presets: \\['fast'\\]"):
        config.preset("slow")
    for bad in ({"invert": 0, "decode": 5}, {"invert": 5, "decode": 10**9}, {"invert": 5, "decode": 5, "refine": -1},
                {"invert": 5.0, "decode": 5}, {"invert": 5, "decode": 5, "anderson": 6},
                {"invert": 5, "decode": 5, "anderson": True}):
        with pytest.raises(InputError, match="must be an integer"):
            StepPreset(**bad)
    with pytest.raises(InputError, match="refine_tol must be a number in \\[0, 1\\)"):
        StepPreset(5, 5, 3, refine_tol="0.1")
    with pytest.raises(InputError, match="spacing must be one of uniform, quadratic"):
        StepPreset(5, 5, spacing="cosine")
    with pytest.raises(InputError, match="steps: quadratic spacing cannot place 90 distinct steps in 100"):
        config.preset(StepPreset(90, 10, spacing="quadratic"))
