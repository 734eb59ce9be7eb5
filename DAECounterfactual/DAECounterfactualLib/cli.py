"""``daecf`` command line. Each subcommand is a thin wrapper over library functions; expected errors
(DAECFError) print one line and exit with status 2, without a traceback."""

from __future__ import annotations

import argparse
import sys

from .errors import DAECFError


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daecf", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the bundled models").set_defaults(func=_cmd_list)
    verify = sub.add_parser("verify", help="verify a bundle's manifest, schema and weights")
    verify.add_argument("bundle", help="bundled model name or bundle folder")
    verify.set_defaults(func=_cmd_verify)
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
