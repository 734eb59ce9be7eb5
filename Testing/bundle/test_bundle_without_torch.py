"""A fresh 3D Slicer has no torch: the module must still list the bundled models, their configs and tasks, so it
can show the panel and offer the installation when the user first asks for a result."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WITHOUT_TORCH = """
import importlib.abc, json, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "safetensors"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, NoTorch())
sys.path.insert(0, sys.argv[1])
from DAECounterfactualLib.bundle.registry import available_bundles
from DAECounterfactualLib.bundle.store import load_bundle

listed = {}
for name, path in available_bundles().items():
    bundle = load_bundle(path, load_weights=False)
    listed[name] = {task: spec.grade_names for task, spec in bundle.tasks.items()}
print(json.dumps({"bundles": listed, "torch_imported": "torch" in sys.modules}))
"""


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, str(REPO / "DAECounterfactual")],
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_bundled_models_and_their_tasks_are_listed_without_torch():
    result = _run_without_torch(WITHOUT_TORCH)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = json.loads(result.stdout.splitlines()[-1])
    assert not listed["torch_imported"]
    assert {"vcf-ct", "disc-mri"} <= set(listed["bundles"])
    assert listed["bundles"]["vcf-ct"]["genant"] == ["G0", "G1", "G2", "G3"]


def test_the_blocker_really_hides_torch():
    """The listing test above proves nothing if the blocker let torch through."""
    result = _run_without_torch(WITHOUT_TORCH.replace("from DAECounterfactualLib.bundle.registry",
                                                      "import torch\nfrom DAECounterfactualLib.bundle.registry"))
    assert result.returncode != 0 and "hidden by the test" in result.stderr
