"""The severity sweep as an animation: frames from the most severe calibrated grade to healthy and back, each the
sweep image beside the original with its distance and calibrated grade; GIF by Pillow, MP4 only with ffmpeg."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bundle_fixtures import read_as
from DAECounterfactualLib.bundle.spec import StepPreset, TaskSpec
from DAECounterfactualLib.cli.commands import main
from DAECounterfactualLib.cli.sweep_animation import END_HOLD, FRAME_MS, SWEEP_FRAMES, sweep_frames, sweep_order
from DAECounterfactualLib.inference.explainer import Explanation, Grades
from DAECounterfactualLib.io.volumes import read_verse_centroids, read_volume
from DAECounterfactualLib.model.probe import Calibration, LinearProbe
from DAECounterfactualResearch.synthesis import export_phantom, make_spine_phantom

SIZE = 16


def explanation(distances, names=("G0", "G1", "G2", "G3")) -> Explanation:
    """A made-up explanation whose sweep image n is the constant -0.9 + 0.1 n (so each panel says which it is)."""
    sweep = np.stack([np.full((1, SIZE, SIZE), -0.9 + 0.1 * n, np.float32) for n in range(len(distances))])
    one = np.array([0.0])
    grades = Grades(distance=one, probability=one + 0.5, score=one + 1.0, grade=np.array([1]), ood_score=one,
                    ood=np.array([False]))
    blank = np.zeros((1, SIZE, SIZE), np.float32)
    return Explanation(task="t", grade_names=names, grades=grades, reconstruction=blank,
                       counterfactuals=np.stack([blank] * len(names)), target_distances=np.arange(len(names)) * 1.0,
                       reflection=blank, sweep=sweep, sweep_distances=np.asarray(distances, np.float64),
                       preset=StepPreset(2, 2), reencoded=read_as([*range(len(names)), 0]),
                       reencoded_latents=np.zeros((len(names) + 1, 2)))


def task(slope: float) -> TaskSpec:
    """Calibrated score = 1.5 + slope × distance on grades G0..G3 (the probe is never used here)."""
    probe = LinearProbe(normal=np.ones(2), bias=0.0, mean=np.zeros(2), scale=np.ones(2))
    return TaskSpec(name="t", description="", grade_names=("G0", "G1", "G2", "G3"), positive_min_grade=2,
                    probe=probe, calibration=Calibration((1.5, slope), 0, 3))


@pytest.mark.parametrize("slope", [1.0, -1.0])
def test_frames_run_from_the_most_severe_end_to_healthy_and_back(slope):
    distances = np.linspace(-2, 2, 5)
    order = sweep_order(explanation(distances), task(slope))
    severe_first = [4, 3, 2, 1, 0] if slope > 0 else [0, 1, 2, 3, 4]
    assert order == severe_first + severe_first[-2:0:-1]


def test_each_frame_shows_the_original_beside_its_sweep_image_labelled_with_distance_and_grade(monkeypatch):
    texts = []
    draw_text = ImageDraw.ImageDraw.text
    monkeypatch.setattr(ImageDraw.ImageDraw, "text", lambda self, xy, text, *a, **k: (
        texts.append(text), draw_text(self, xy, text, *a, **k))[1])
    distances = np.linspace(-2, 2, 5)
    original = np.linspace(-1, 1, SIZE * SIZE, dtype=np.float32).reshape(1, SIZE, SIZE)
    made_up = explanation(distances)
    frames, durations = sweep_frames(original, made_up, task(1.0), "title", frame_ms=100)
    assert len(frames) == 8 and durations == [400, 100, 100, 100, 400, 100, 100, 100]
    assert len({frame.size for frame in frames}) == 1 and frames[0].mode == "L"
    scale = 256 // SIZE
    expected_original = np.round((original[0] + 1) / 2 * 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    for frame, index in zip(frames, [4, 3, 2, 1, 0, 1, 2, 3]):
        pixels = np.asarray(frame)
        top, left = _find(pixels, expected_original)
        assert np.array_equal(pixels[top:top + SIZE * scale, left:left + SIZE * scale], expected_original)
        right = pixels[top:top + SIZE * scale, left + SIZE * scale + 4:left + 2 * SIZE * scale + 4]
        assert np.all(right == np.round((made_up.sweep[index, 0, 0, 0] + 1) / 2 * 255))  # sweep image n, beside it
    captions = [t for t in texts if t.startswith("d = ")]
    scores = 1.5 + distances
    assert captions[:5] == [f"d = {distances[i]:+.2f}   calibrated grade G{int(np.clip(np.rint(scores[i]), 0, 3))} "
                            f"(score {scores[i]:.2f})" for i in (4, 3, 2, 1, 0)]
    assert "original: G1 (d = +0.00)" in texts and "title" in texts


def _find(pixels: np.ndarray, panel: np.ndarray) -> tuple[int, int]:
    """Top-left corner of ``panel`` in ``pixels`` (exact match)."""
    h, w = panel.shape
    for top in range(pixels.shape[0] - h + 1):
        for left in range(pixels.shape[1] - w + 1):
            if pixels[top, left] == panel[0, 0] and np.array_equal(pixels[top:top + h, left:left + w], panel):
                return top, left
    raise AssertionError("the original is not in the frame")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    export_phantom(make_spine_phantom(seed=3, shape=(64, 40, 40), spacing=(2.0, 2.0, 2.0)), folder)
    volume = read_volume(folder / "ct.nii.gz")
    point = read_verse_centroids(folder / "ctd.json", volume)[1].ras
    return folder / "ct.nii.gz", ",".join(f"{v:.2f}" for v in point)


def explain(bundle, phantom, out, *flags) -> int:
    image, point = phantom
    return main(["explain", "--bundle", str(bundle), "--task", "genant", "--point", point, "--preset", "fast",
                 "--out", str(out / "explain"), *flags, str(image)])


def test_explain_animate_writes_a_looping_gif_of_the_sweep_there_and_back(ct_bundle_path, phantom, tmp_path, capsys):
    gif = tmp_path / "sweep.gif"
    assert explain(ct_bundle_path, phantom, tmp_path, "--animate", str(gif)) == 0
    assert f"sweep animation written to {gif}" in capsys.readouterr().err
    with Image.open(gif) as animation:
        assert animation.n_frames == 2 * SWEEP_FRAMES - 2 and animation.info["loop"] == 0
        durations = []
        for n in range(animation.n_frames):
            animation.seek(n)
            durations.append(animation.info["duration"])
    assert durations[0] == durations[SWEEP_FRAMES - 1] == END_HOLD * FRAME_MS
    assert durations.count(FRAME_MS) == 2 * SWEEP_FRAMES - 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explain", "sweep.gif"]  # no temporary file left


@pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="no ffmpeg on PATH")
def test_explain_animate_writes_an_mp4_where_ffmpeg_is_installed(ct_bundle_path, phantom, tmp_path):
    mp4 = tmp_path / "sweep.mp4"
    assert explain(ct_bundle_path, phantom, tmp_path, "--animate", str(mp4), "--sweep-frames", "4",
                   "--frame-ms", "100") == 0
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", str(mp4)],
                           capture_output=True, text=True)
    codec, width, height, frames = probe.stdout.strip().split(",")
    # 4 sweep images there and back are 6 frames; at 10 frames/s the two ends (held 4 × 100 ms) repeat 4 times
    assert (codec, int(width) % 2, int(height) % 2, int(frames)) == ("h264", 0, 0, 12)


@pytest.mark.parametrize("name, message", [
    ("sweep.avi", "sweep.avi: an animation is written as .gif or .mp4, not .avi"),
    ("sweep.mp4", "sweep.mp4: writing MP4 needs ffmpeg on PATH, and none was found; write a .gif"),
])
def test_an_animation_that_cannot_be_written_is_refused_before_any_work(ct_bundle_path, phantom, tmp_path, capsys,
                                                                       monkeypatch, name, message):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no ffmpeg
    assert explain(ct_bundle_path, phantom, tmp_path, "--animate", str(tmp_path / name)) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_absurd_frame_counts_are_refused_by_the_parser(ct_bundle_path, phantom, tmp_path, capsys):
    for flag, value in (("--sweep-frames", "1"), ("--frame-ms", "0")):
        with pytest.raises(SystemExit):
            explain(ct_bundle_path, phantom, tmp_path, "--animate", str(tmp_path / "a.gif"), flag, value)
        assert f"argument {flag}: expected a whole number in" in capsys.readouterr().err

