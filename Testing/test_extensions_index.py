"""The catalog entry (DAECounterfactual.json) and the extension's metadata pass the Slicer Extensions Index's checks.

The checks are the Index's own, imported from ../shared/slicer/ExtensionsIndex/check_description_files.py (pinned
there, never copied here); those tests skip with their reason where ../shared/slicer is absent.

Run offline here: the JSON format, extension-name, category, repository-name and scm_url checks on the entry; the
CMakeLists.txt check (project name, icon and screenshot URLs) with the Index's URL download replaced by a look-up of the
same path in this repository; the licence-file check; the repository-size check on a fresh clone of HEAD (the
Index clones scm_url at scm_revision and measures the whole folder, .git included).
Not run, because they need the network: cloning from GitHub, downloading the catalog JSON schema (a stand-in below
compares the entry with a real catalog entry instead), the GitHub topics query (the repository must carry the
"3d-slicer-extension" topic), and fetching the icon and screenshot URLs from GitHub. check_repository_structure.py
checks the Index's own repository (its root holds only .json entries and a few named files; the folder is fixed to
the script's location), so there is nothing in it to run on this repository.
"""

import ast
import json
import re
import subprocess
import sys
import types
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
INDEX_DIR = Path(__file__).resolve().parents[2] / "shared" / "slicer" / "ExtensionsIndex"
ENTRY = REPO / "DAECounterfactual.json"
NAME = ENTRY.stem  # the Index names an extension after its catalog file
MODULE_SCRIPT = REPO / "DAECounterfactual" / "DAECounterfactual.py"


@pytest.fixture(scope="module")
def index():
    """The Index's check_description_files.py, loaded from its path."""
    script = INDEX_DIR / "check_description_files.py"
    if not script.is_file():
        pytest.skip(f"{script} is absent: the Extensions Index checks are pinned in ../shared/slicer (see its README)")
    source = script.read_text(encoding="utf-8")
    if sys.version_info < (3, 12):
        # Python 3.11 cannot compile print_categories (a backslash inside an f-string expression, allowed from 3.12
        # by PEP 701). It only lists the categories of an Index folder and no check calls it: drop it, run the rest.
        source, dropped = re.subn(r"^def print_categories\(.*?(?=^def )", "", source, flags=re.S | re.M)
        assert dropped == 1, "print_categories not found: the pinned script changed, revisit this work-around"
    module = types.ModuleType("extensions_index_check_description_files")
    module.__file__ = str(script)
    exec(compile(source, str(script), "exec"), module.__dict__)
    return module


def _entry() -> dict:
    return json.loads(ENTRY.read_text(encoding="utf-8"))


def _cmake_value(variable: str) -> str:
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    match = re.search(rf'set\(\s*{variable}\s+"([^"]*)"\s*\)', text)
    assert match, f'set({variable} "...") not found in the top-level CMakeLists.txt'
    return match.group(1)


def _run_checks(index, checks) -> list[str]:
    """Run the Index checks as its main() does: every check, every failure reported."""
    metadata = index.parse_json(str(ENTRY))
    failures = []
    for check, kwargs in checks:
        try:
            check(NAME, metadata, **kwargs)
        except index.ExtensionCheckError as exc:
            failures.append(f"{check.__name__}: {exc}")
    return failures


def repository_file_for_url(url: str) -> Path:
    """The file of this repository that a raw.githubusercontent.com URL of scm_url at scm_revision names."""
    entry = _entry()
    owner_repo = urllib.parse.urlsplit(entry["scm_url"]).path.strip("/").removesuffix(".git")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/{entry['scm_revision']}/"
    assert url.startswith(prefix), f"{url} is not a file of {entry['scm_url']} at {entry['scm_revision']}"
    return REPO / url[len(prefix):]


def _assert_image(path: Path) -> None:
    assert path.is_file(), f"{path.relative_to(REPO)} does not exist in the repository"
    with Image.open(path) as image:
        # validate_image_url accepts PNG, JPEG and GIF
        assert image.format in {"PNG", "JPEG", "GIF"}, f"{path.relative_to(REPO)} is {image.format}"


def test_catalog_entry_passes_the_index_description_checks(index):
    failures = _run_checks(index, [
        (index.check_json_file_format, {"extension_file_path": str(ENTRY)}),
        (index.check_extension_name, {}),
        (index.check_category, {}),
        (index.check_git_repository_name, {}),
        (index.check_scm_url_syntax, {}),
    ])
    assert not failures, "\n".join(failures)


def test_top_level_cmake_passes_the_index_cmakelists_check(index, monkeypatch):
    """project() matches the catalog file's name; the icon and screenshot URLs name images of this repository
    (the Index downloads them; here each URL is resolved to the same path in the working tree)."""
    seen = []

    def local_image(url, url_type, extension_name, check_name):
        seen.append(url_type)
        try:
            _assert_image(repository_file_for_url(url))
        except AssertionError as exc:
            raise index.ExtensionCheckError(extension_name, check_name, f"{url_type}: {exc}") from exc

    monkeypatch.setattr(index, "validate_image_url", local_image)
    failures = _run_checks(index, [(index.check_cmakelists_content, {"cloned_repository_folder": str(REPO)})])
    assert not failures, "\n".join(failures)
    assert {"EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"} <= set(seen), "the URL look-up was not used"


def test_licence_file_is_found_and_is_the_licence_the_package_declares(index):
    failures = _run_checks(index, [(index.check_license_file, {"cloned_repository_folder": str(REPO)})])
    assert not failures, "\n".join(failures)
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert declared == "Apache-2.0", f"pyproject.toml declares {declared}: replace LICENSE and this test"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    for phrase in ("Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS"):
        assert phrase in text, f"LICENSE is not the full Apache-2.0 text (no {phrase!r})"


def test_a_fresh_clone_of_head_is_within_the_index_size_limit(index, tmp_path):
    """The Index clones the whole history; the bundled models make this the check most likely to fail.
    Measures HEAD as committed (what the Index would clone), not uncommitted work."""
    git = ["git", "-C", str(REPO)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        shallow = subprocess.run([*git, "rev-parse", "--is-shallow-repository"], check=True, capture_output=True,
                                 text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: there is no history to clone")
    if shallow == "true":
        pytest.skip("a shallow checkout lacks the history the Index would clone")
    clone, failures = tmp_path / "clone", []
    metadata = {"scm_url": REPO.as_uri(), "scm_revision": head}  # this repository in place of GitHub's
    for check in (index.check_clone_repository, index.check_repository_size):
        try:
            check(NAME, metadata, cloned_repository_folder=str(clone))
        except index.ExtensionCheckError as exc:
            failures.append(f"{check.__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_catalog_entry_has_the_fields_of_a_real_catalog_entry():
    """Offline stand-in for the Index's JSON schema check (it downloads the schema, whose additionalProperties is
    false): the same $schema, no field that the pinned TotalSegmentator.json entry lacks, the same value types, and a
    tier the Index defines (1 experimental, 3 community-supported, 5 core-supported)."""
    reference_file = INDEX_DIR / "TotalSegmentator.json"
    if not reference_file.is_file():
        pytest.skip(f"{reference_file} is absent: the reference catalog entry is pinned in ../shared/slicer")
    reference, entry = json.loads(reference_file.read_text(encoding="utf-8")), _entry()
    assert entry["$schema"] == reference["$schema"]
    assert set(entry) - set(reference) == set(), f"fields a catalog entry does not have: {set(entry) - set(reference)}"
    assert {key: type(value) for key, value in entry.items()} == {key: type(reference[key]) for key in entry}
    assert entry["tier"] in (1, 3, 5)
    # the PyTorch extension under the name another catalog entry depends on it by
    assert set(entry["build_dependencies"]) <= set(reference["build_dependencies"])


def test_icon_and_screenshot_urls_name_images_in_the_repository():
    """Without ../shared: the URLs in CMakeLists.txt point at scm_url/scm_revision and at files that exist here."""
    for variable in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        for url in _cmake_value(variable).split():
            _assert_image(repository_file_for_url(url))


def _module_list(attribute: str) -> list[str]:
    """The strings assigned to self.parent.<attribute> in the module class, read without importing slicer;
    translate("context", "text") and _("text") count as their text."""
    tree = ast.parse(MODULE_SCRIPT.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute)
                and ast.unparse(node.targets[0]) == f"self.parent.{attribute}" and isinstance(node.value, ast.List)):
            items = []
            for element in node.value.elts:
                if isinstance(element, ast.Call) and element.args:
                    element = element.args[-1]
                assert isinstance(element, ast.Constant) and isinstance(element.value, str), ast.unparse(element)
                items.append(element.value)
            return items
    raise AssertionError(f"self.parent.{attribute} = [...] not found in {MODULE_SCRIPT.name}")


def test_category_and_contributors_agree_between_cmake_catalog_entry_and_module():
    category = _cmake_value("EXTENSION_CATEGORY")
    contributors = re.findall(r"[^,()]+\([^()]+\)", _cmake_value("EXTENSION_CONTRIBUTORS"))
    contributors = [name.strip() for name in contributors]
    assert contributors and ", ".join(contributors) == _cmake_value("EXTENSION_CONTRIBUTORS"), (
        'EXTENSION_CONTRIBUTORS must list "Name (Organization)" entries separated by ", "')
    assert _entry()["category"] == category
    assert _entry()["build_dependencies"] == _cmake_value("EXTENSION_DEPENDS").split()
    assert _module_list("categories") == [category]
    assert _module_list("contributors") == contributors
