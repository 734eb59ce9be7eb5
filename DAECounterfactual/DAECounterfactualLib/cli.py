"""``daecf`` command line. Each subcommand is a thin wrapper over library functions; expected errors
(DAECFError) print one line and exit with status 2, without a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import DAECFError, InputError


def _cmd_list(args: argparse.Namespace) -> int:
    from .bundle import available_bundles, load_bundle

    bundles = available_bundles()
    if not bundles:
        print("no bundled models found")
    for name, path in bundles.items():
        bundle = load_bundle(path, load_weights=False)
        print(f"{name}\t{bundle.config.modality}\ttasks: {', '.join(sorted(bundle.tasks))}\t{path}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .bundle import load_bundle, resolve_bundle
    from .networks import count_parameters

    bundle = load_bundle(resolve_bundle(args.bundle), load_weights=True)
    cfg = bundle.config
    print(f"{bundle.bundle_id}: OK")
    print(f"  modality {cfg.modality}, patch {cfg.patch_size_px} px at {cfg.patch_spacing_mm} mm, "
          f"{count_parameters(bundle.model) / 1e6:.2f} M parameters, z_dim {cfg.model.z_dim}")
    for task in bundle.tasks.values():
        print(f"  task {task.name}: grades {', '.join(task.grade_names)}; positive if {task.positive_rule}; "
              f"probe {task.probe.kind}, calibration {task.calibration.method}")
    return 0


def _cmd_fetch_sample(args: argparse.Namespace) -> int:
    from .sampledata import WHEEL_LICENSE, WHEEL_REQUIREMENT, fetch_sample_wheel, sample_files

    wheel = fetch_sample_wheel()
    print(f"{WHEEL_REQUIREMENT} verified at {wheel} (licence {WHEEL_LICENSE})")
    for name in ("spine-ct", "spine-mri"):
        print(f"  {name}: {sample_files(name)['image']}")
    return 0


def _explainer(args: argparse.Namespace):
    from .bundle import load_bundle, resolve_bundle
    from .pipeline import Explainer

    bundle = load_bundle(resolve_bundle(args.bundle))
    bundle.task(args.task)  # unknown task: fail before any work
    return Explainer(bundle, device=_device(args.device))


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return name


def _parse_point(text: str):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise InputError(f"--point {text!r}: expected R,A,S in millimetres, e.g. --point 1.5,-20,30")
    return values


def _positions(args: argparse.Namespace, volume):
    from .volumes import positions_from_mask, positions_from_ras, read_verse_centroids, read_volume

    sources = [s for s in (args.mask, args.centroids, args.point or None) if s]
    if len(sources) != 1:
        raise InputError("give exactly one source of vertebra positions: --mask, --centroids or --point")
    if args.mask:
        return positions_from_mask(read_volume(args.mask))
    if args.centroids:
        return read_verse_centroids(args.centroids, volume)
    return positions_from_ras([(i + 1, _parse_point(p)) for i, p in enumerate(args.point)], rank_labels=True)


def _cmd_score(args: argparse.Namespace) -> int:
    from .scoring import score_images, score_volume, write_scores_csv
    from .volumes import read_npz_dataset, read_volume

    explainer = _explainer(args)
    if str(args.input).endswith(".npz"):
        data = read_npz_dataset(args.input, args.split)
        rows = score_images(explainer, data.images, data.names, args.task)
    else:
        volume = read_volume(args.input)
        rows = score_volume(explainer, volume, _positions(args, volume), args.task)
    write_scores_csv(rows, args.out)
    print(f"{len(rows)} rows written to {args.out} ({explainer.bundle.bundle_id}, task {args.task})")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .exports import write_explanation
    from .scoring import model_input
    from .volumes import read_volume

    explainer = _explainer(args)
    volume = read_volume(args.input)
    patch, image = model_input(explainer.config, volume, _parse_point(args.point))
    explanation = explainer.explain(image, args.task, preset=args.preset)
    summary = write_explanation(args.out, explainer, patch, image, explanation, volume)
    print(json.dumps(summary["grades"], indent=1))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .benchmark import format_table, run_benchmark, sample_ct_patches

    explainer = _explainer(args)
    presets = tuple(args.presets.split(","))
    for name in presets:
        explainer.preset(name)  # unknown preset: fail before measuring anything
    report = run_benchmark(explainer, args.task, sample_ct_patches(explainer.config, args.patches), presets,
                           repeats=args.repeats)
    print(format_table(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    report = run_demo(args.out, bundle=args.bundle, task=args.task, preset=args.preset, level=args.level,
                      device=_device(args.device))
    g = report["grades"]
    print(f"{report['bundle']}, {report['clicked']['level']}: {g['grade_name']} (score {g['score']:.2f}, "
          f"P {g['probability']:.2f}{', OUT OF DISTRIBUTION' if g['ood'] else ''})")
    for row in report["scores"]:
        print(f"  {row['level']}: {row['grade_name']} (score {row['score']:.2f})")
    print("timings: " + ", ".join(f"{k} {v:.2f}" for k, v in report["timings"].items()))
    print("wrote " + ", ".join(report["outputs"].values()))
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="bundled model name (e.g. vcf-ct) or bundle folder")
    parser.add_argument("--task", required=True, help="task of the bundle (e.g. genant)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


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
    score.add_argument("--mask", type=Path, help="vertebra instance mask (VerSe ids give level names, other ids ranks)")
    score.add_argument("--centroids", type=Path, help="VerSe centroid JSON (*_ctd.json)")
    score.add_argument("--point", action="append", help="R,A,S in mm (repeatable)")
    score.add_argument("--split", default="val", help="split of a MedMNIST-style .npz (train/val/test)")
    score.add_argument("input", type=Path, help="volume (NIfTI, NRRD, MHA, DICOM folder) or .npz")
    score.set_defaults(func=_cmd_score)
    explain = sub.add_parser("explain", help="counterfactual explanation of one vertebra")
    _add_model_arguments(explain)
    explain.add_argument("--point", required=True, help="R,A,S in mm of the vertebra")
    explain.add_argument("--preset", default="standard", help="fast, standard or reference")
    explain.add_argument("--out", required=True, type=Path, help="folder for strip.png, NRRDs and summary.json")
    explain.add_argument("input", type=Path, help="volume file or DICOM folder")
    explain.set_defaults(func=_cmd_explain)
    bench = sub.add_parser("bench", help="time explanations per step preset on patches of the sample CT")
    _add_model_arguments(bench)
    bench.add_argument("--presets", default="fast,standard,reference")
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--patches", type=int, default=64, help="patches for the encoder throughput")
    bench.add_argument("--out", type=Path, help="JSON report")
    bench.set_defaults(func=_cmd_bench)
    demo = sub.add_parser("demo", help="headless demo on the sample CT with a bundled model")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument("--bundle", default="vcf-ct")
    demo.add_argument("--task", default="genant")
    demo.add_argument("--preset", default="standard")
    demo.add_argument("--level", default="L3", help="vertebra of the sample CT to explain (L2, L3, L4)")
    demo.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    demo.set_defaults(func=_cmd_demo)
    sub.add_parser("fetch-sample", help="download the sample spine CT/MRI (tptbox 1.1.0 wheel from PyPI)"
                   ).set_defaults(func=_cmd_fetch_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DAECFError as exc:
        print(f"daecf: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
