"""Inference on arrays and volumes: sagittal patch geometry, screening, the ``Explainer`` (grade, explain, encode)
and score rows. Imports ``bundle``, ``model`` and ``io``.
"""
