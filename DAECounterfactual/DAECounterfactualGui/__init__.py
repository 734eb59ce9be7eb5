"""The Slicer-side helpers of the module's panel (they use ``slicer.util`` and Slicer's modules, so they stay out of
the Qt-free ``DAECounterfactualLib``): dependency installation, the sample data source and the explanation views.
"""
