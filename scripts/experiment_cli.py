"""Command-line pieces shared by the scripts that study a bundle on its experiment's data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from train_dae import DEFAULT_DATA_ROOT


def add_bundle_arguments(parser: argparse.ArgumentParser, task: bool = False) -> None:
    """The experiment config, its data root, the bundle to study (and, with ``task``, which of its tasks)."""
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--bundle", default=None, help="bundle folder or name (default: the experiment's name)")
    if task:
        parser.add_argument("--task", default=None, help="default: the experiment's first task")


def chosen_task(parser: argparse.ArgumentParser, args: argparse.Namespace, experiment: dict) -> dict[str, Any]:
    """The config's entry for ``--task`` (the first task when none is named); an unknown name is a usage error."""
    tasks = {t["name"]: t for t in experiment["tasks"]}
    if args.task and args.task not in tasks:
        parser.error(f"task {args.task!r} is not in {args.config} (tasks: {', '.join(tasks)})")
    return tasks[args.task] if args.task else experiment["tasks"][0]
