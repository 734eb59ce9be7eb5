"""Qt-free engine of the DAECounterfactual Slicer extension.

Importable in plain Python (CLI, training scripts, tests) and inside 3D Slicer. Submodules are imported where
they are used, so importing this package costs nothing and does not require torch.
"""

__version__ = "0.1.0"
