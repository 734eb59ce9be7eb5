"""The Slicer extension cannot be packaged with a missing or unlisted file."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "DAECounterfactual"


def _cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not found in CMakeLists.txt"
    return [item.replace("${MODULE_NAME}", "DAECounterfactual") for item in match.group(1).split()]


def test_every_file_named_in_the_module_cmake_lists_exists():
    text = (MODULE / "CMakeLists.txt").read_text(encoding="utf-8")
    listed = _cmake_list(text, "MODULE_PYTHON_SCRIPTS") + _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    missing = [name for name in listed if not (MODULE / name).is_file()]
    assert not missing, f"listed in DAECounterfactual/CMakeLists.txt but missing: {missing}"


def test_every_module_python_file_is_listed():
    listed = set(_cmake_list((MODULE / "CMakeLists.txt").read_text(encoding="utf-8"), "MODULE_PYTHON_SCRIPTS"))
    on_disk = {p.relative_to(MODULE).as_posix() for p in MODULE.rglob("*.py") if "__pycache__" not in p.parts}
    assert on_disk - listed == set(), f"not listed in MODULE_PYTHON_SCRIPTS: {sorted(on_disk - listed)}"


def test_every_resource_file_is_listed():
    listed = set(_cmake_list((MODULE / "CMakeLists.txt").read_text(encoding="utf-8"), "MODULE_PYTHON_RESOURCES"))
    on_disk = {p.relative_to(MODULE).as_posix() for p in (MODULE / "Resources").rglob("*") if p.is_file()}
    assert on_disk - listed == set(), f"not listed in MODULE_PYTHON_RESOURCES: {sorted(on_disk - listed)}"


def test_top_level_cmake_declares_the_extension():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "project(DAECounterfactual)" in text
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf"set\({variable} \S", text), f"{variable} is not set"
    assert "add_subdirectory(DAECounterfactual)" in text
    assert "slicerMacroBuildScriptedModule" in (MODULE / "CMakeLists.txt").read_text(encoding="utf-8")


def test_widget_uses_only_names_defined_in_the_ui_file():
    ui = (MODULE / "Resources" / "UI" / "DAECounterfactual.ui").read_text(encoding="utf-8")
    defined = set(re.findall(r'name="(\w+)"', ui))
    used = set(re.findall(r"\bself\.ui\.(\w+)", (MODULE / "DAECounterfactual.py").read_text(encoding="utf-8")))
    assert used, "the widget uses no ui names: the regex or the widget is broken"
    assert used - defined == set(), f"used by the widget but not in the .ui file: {sorted(used - defined)}"


def test_console_script_points_at_an_existing_function():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    module, function = project["scripts"]["daecf"].split(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), function))


def test_no_pickle_based_loading_anywhere():
    pattern = re.compile(r"torch\.load\(|pickle\.loads?\(|joblib\.load\(|allow_pickle\s*=\s*True")
    sources = [p for folder in ("DAECounterfactual", "DAECounterfactualResearch", "scripts", "Testing") for p in (REPO / folder).rglob("*.py")]
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in sources if p.name != Path(__file__).name
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders, f"pickle-capable loading found: {offenders}"


def test_slicer_requirements_are_torch_and_safetensors_as_the_package_states_them():
    """What Slicer does not ship and the module needs; the research extra and the daecf command line's extras
    (tqdm, matplotlib) stay out (the import-direction test checks that the module's imports need nothing more)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    package = {re.split(r"[<>=!~ ]", d)[0].lower(): d for d in project["dependencies"]}
    lines = (MODULE / "Resources" / "requirements-slicer.txt").read_text(encoding="utf-8").splitlines()
    slicer = {re.split(r"[<>=!~ ]", d)[0].lower(): d for d in lines if d and not d.startswith("#")}
    assert slicer == {name: package[name] for name in ("torch", "safetensors")}


def test_icons_have_the_sizes_slicer_expects():
    """The module icon, which EXTENSION_ICONURL also names, is a 128x128 PNG (Slicer's size for an extension icon);
    any other PNG in Resources/Icons is a Sample Data thumbnail of about 260x280 (the scripted-module template's
    registerSampleData asks for that size)."""
    from PIL import Image

    sizes = {}
    for path in (MODULE / "Resources" / "Icons").glob("*.png"):
        with Image.open(path) as image:
            assert image.format == "PNG", f"{path.name} is {image.format}"
            sizes[path.name] = image.size
    assert sizes.pop("DAECounterfactual.png", None) == (128, 128), "DAECounterfactual.png must be 128x128"
    odd = {name: size for name, size in sizes.items() if not (234 <= size[0] <= 286 and 252 <= size[1] <= 308)}
    assert not odd, f"thumbnails should be about 260x280: {odd}"
