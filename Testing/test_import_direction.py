"""Imports point down the layers, and what 3D Slicer installs needs nothing that Slicer does not ship.

Runtime (DAECounterfactualLib): cli → mrml → inference → bundle → model → io → errors; a package imports its own
modules and those of layers below it, never above. Nothing in the runtime imports Qt or the research package.
Research (DAECounterfactualResearch) imports the runtime, never the other way. Scripts import the packages, never
each other, and never edit sys.path. Read from the source (ast), so lazy imports inside functions count too.
"""

import ast
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "DAECounterfactual" / "DAECounterfactualLib"
RESEARCH = REPO / "DAECounterfactualResearch"
SLICER_MODULE = REPO / "DAECounterfactual" / "DAECounterfactual.py"
SLICER_GUI = REPO / "DAECounterfactual" / "DAECounterfactualGui"  # the panel's helpers: Slicer, not Qt-free
LAYERS = ("errors", "io", "model", "bundle", "inference", "mrml", "cli")  # bottom to top
QT = {"qt", "ctk", "PythonQt", "slicer.util", "slicer.ScriptedLoadableModule"}
SHIPPED_BY_SLICER = {"numpy", "scipy", "SimpleITK", "PIL", "vtk", "slicer"}
SLICER_MODULES = {"SampleData", "PyTorchUtils"}  # Slicer's own module, and the PyTorch extension it depends on


def _module_name(path: Path) -> str:
    root = RESEARCH.parent if path.is_relative_to(RESEARCH) else RUNTIME.parent
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (``from a import b`` gives a.b when that is a module)."""
    module = _module_name(path) if path.is_relative_to(RUNTIME) or path.is_relative_to(RESEARCH) else ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}"))
    return names


def _is_module(name: str) -> bool:
    top, *rest = name.split(".")
    root = {"DAECounterfactualLib": RUNTIME, "DAECounterfactualResearch": RESEARCH}.get(top)
    return root is not None and bool(rest) and (root.joinpath(*rest).with_suffix(".py").is_file()
                                                or root.joinpath(*rest, "__init__.py").is_file())


def _layer(name: str) -> int | None:
    """The rank of a runtime module's layer (its subpackage, or ``errors``); None for the package itself."""
    parts = name.split(".")
    if parts[0] != "DAECounterfactualLib" or len(parts) == 1 or parts[1] not in LAYERS:
        return None  # outside the runtime, the package itself, or a module in no layer (its own test fails)
    return LAYERS.index(parts[1])


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_runtime_module_sits_in_a_layer():
    """A new module goes into the package of its layer (or is ``errors``), so the arrows below can be checked."""
    homeless = sorted(p.relative_to(RUNTIME).as_posix() for p in _sources(RUNTIME)
                      if p.relative_to(RUNTIME).parts[0].removesuffix(".py") not in (*LAYERS, "__init__"))
    assert not homeless, f"runtime modules outside the layer packages {LAYERS}: {homeless}"


@pytest.mark.parametrize("path", _sources(RUNTIME), ids=lambda p: p.relative_to(RUNTIME).as_posix())
def test_runtime_imports_only_its_own_layer_and_those_below(path):
    own = _layer(_module_name(path))
    upward = sorted(name for name in _imports(path)
                    if own is not None and (_layer(name) or 0) > own)
    assert not upward, f"{path.relative_to(REPO)} imports upward: {upward}"


@pytest.mark.parametrize("path", [*_sources(RUNTIME), SLICER_MODULE, *_sources(SLICER_GUI)], ids=lambda p: p.name)
def test_runtime_never_imports_the_research_package(path):
    research = sorted(name for name in _imports(path) if name.split(".")[0] == "DAECounterfactualResearch")
    assert not research, f"{path.relative_to(REPO)} imports {research}"


@pytest.mark.parametrize("path", _sources(RUNTIME), ids=lambda p: p.relative_to(RUNTIME).as_posix())
def test_runtime_never_imports_qt(path):
    qt = sorted(name for name in _imports(path) if name in QT or name.split(".")[0] in QT)
    assert not qt, f"{path.relative_to(REPO)} imports {qt}"


def _closure(start: Path) -> set[Path]:
    """The runtime files ``start`` imports, directly or through each other."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "DAECounterfactualLib" and _is_module(name):
                file = RUNTIME.joinpath(*parts[1:]).with_suffix(".py")
                todo.append(file if file.is_file() else RUNTIME.joinpath(*parts[1:], "__init__.py"))
            elif parts[0] == SLICER_GUI.name and len(parts) > 1:
                todo.append(SLICER_GUI.joinpath(*parts[1:]).with_suffix(".py"))
    return seen


def test_the_slicer_module_needs_only_what_slicer_ships_and_its_requirements():
    requirements = (SLICER_MODULE.parent / "Resources" / "requirements-slicer.txt").read_text(encoding="utf-8")
    installed = {"torch", "safetensors"}
    assert {line.split(">")[0] for line in requirements.splitlines() if line and not line.startswith("#")} == installed
    allowed = (set(sys.stdlib_module_names) | SHIPPED_BY_SLICER | SLICER_MODULES | installed | QT
               | {"DAECounterfactualLib", SLICER_GUI.name})
    needed = {name.split(".")[0]: path for path in _closure(SLICER_MODULE) for name in _imports(path)}
    extra = sorted(f"{name} ({path.relative_to(REPO)})" for name, path in needed.items()
                   if name not in allowed and name != "" and name != "__future__")
    assert not extra, f"the Slicer module would need packages Slicer neither ships nor installs: {extra}"


def test_research_imports_the_runtime_and_itself_only_among_the_project():
    scripts = {p.stem for p in (REPO / "scripts").rglob("*.py")}
    offenders = [f"{p.name}: {name}" for p in _sources(RESEARCH) for name in _imports(p) if name in scripts]
    assert not offenders, f"the research package imports scripts: {offenders}"


@pytest.mark.parametrize("path", sorted((REPO / "scripts").rglob("*.py")), ids=lambda p: p.name)
def test_scripts_import_the_packages_not_each_other_nor_edit_sys_path(path):
    text = path.read_text(encoding="utf-8")
    assert "sys.path" not in text, f"{path.relative_to(REPO)} edits sys.path"
    scripts = {p.stem for p in (REPO / "scripts").rglob("*.py")}
    assert not _imports(path) & scripts, f"{path.relative_to(REPO)} imports scripts: {_imports(path) & scripts}"


def test_the_package_installs_both_packages_and_keeps_research_dependencies_in_an_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["setuptools"]["packages"]
    assert {"DAECounterfactualLib", "DAECounterfactualResearch"} <= set(packages)
    assert {f"DAECounterfactualLib.{layer}" for layer in LAYERS[1:]} <= set(packages)
    runtime = " ".join(project["project"]["dependencies"]).lower()
    assert "scikit-learn" not in runtime and "monai" not in runtime
