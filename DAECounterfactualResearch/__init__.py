"""Research side of DAECounterfactual, never installed into 3D Slicer.

Dataset building, fracture simulation and phantoms, training and checkpoints, probe and task fitting, evaluation,
bootstrap, the baseline, and the results report. It imports the runtime package ``DAECounterfactualLib``; the
runtime never imports it. Installed with the ``research`` extra (``pip install -e ".[research]"``).
"""
