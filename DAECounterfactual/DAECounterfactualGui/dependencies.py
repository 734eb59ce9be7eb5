"""torch and safetensors, which Slicer does not ship: checked, and installed with the user's consent, when the user
first asks for a result, never when the module opens.

torch comes from the PyTorch extension (``PyTorchUtils`` picks the build that matches the GPU driver), with the
version the module requires; the rest through ``slicer.packaging.pip_ensure`` (Slicer 5.12+, which must be
imported explicitly), or ``slicer.util.pip_install`` after a confirmation on older Slicer.
"""

import importlib.util
import logging
import re
import sys
from pathlib import Path

import slicer

REQUIREMENTS_FILE = Path(__file__).resolve().parents[1] / "Resources" / "requirements-slicer.txt"
REQUESTER = "DAE Counterfactual"


def _slicerPackaging():
    """``slicer.packaging`` (Slicer 5.12+, a submodule a session must import), or None on older Slicer."""
    try:
        import slicer.packaging
    except ImportError:
        return None
    return slicer.packaging


def requirements() -> list[str]:
    """The module's requirements file, read by Slicer's own parser where there is one (5.12+)."""
    packaging = _slicerPackaging()
    if packaging is None:
        lines = REQUIREMENTS_FILE.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-"))]
    return [str(requirement) for requirement in packaging.load_requirements(REQUIREMENTS_FILE)]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]


def _satisfied(requirement: str) -> bool:
    """Installed at a version the requirement accepts (the version is checked where Slicer can: 5.12+)."""
    packaging = _slicerPackaging()
    if packaging is None:  # presence only
        return importlib.util.find_spec(_name(requirement)) is not None
    return packaging.pip_check(requirement)


def missingRequirements() -> list[str]:
    return [r for r in requirements() if not _satisfied(r)]


def dependenciesPresent() -> bool:
    return not missingRequirements()


def _installTorch(requirement: str) -> bool:
    try:
        import PyTorchUtils
    except ImportError:
        slicer.util.errorDisplay(
            "DAE Counterfactual needs PyTorch, which the PyTorch extension installs. Install the PyTorch extension "
            "from the Extensions Manager, restart Slicer and try again.", windowTitle=REQUESTER)
        return False
    alreadyImported = "torch" in sys.modules
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
        askConfirmation=True, torchVersionRequirement=requirement[len(_name(requirement)):].strip())
    if torch is None:
        return False
    if alreadyImported:
        slicer.util.infoDisplay("PyTorch was updated: restart Slicer to use the new version.", windowTitle=REQUESTER)
        return False
    return True


def _installPackages(missing: list[str]) -> bool:
    packaging = _slicerPackaging()
    if packaging is None:
        if not slicer.util.confirmOkCancelDisplay(
                f"DAE Counterfactual needs these Python packages: {', '.join(missing)}. Install them now?",
                windowTitle=REQUESTER):
            return False
        slicer.util.pip_install(missing)
        return True
    try:
        packaging.pip_ensure(missing, requester=REQUESTER)
    except RuntimeError as exc:  # pip_ensure's way of saying that the user declined
        logging.info(f"{REQUESTER}: {exc}")
        return False
    return True


def ensureDependencies() -> bool:
    """True when every requirement is satisfied, after installing what is missing if the user agrees."""
    missing = missingRequirements()
    torch = [r for r in missing if _name(r) == "torch"]
    others = [r for r in missing if _name(r) != "torch"]
    if torch and not _installTorch(torch[0]):
        return False
    if others and not _installPackages(others):
        return False
    return dependenciesPresent()
