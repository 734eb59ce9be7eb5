"""The Slicer side without Qt: MRML scene helpers and ``ExplanationLogic``. Imports ``inference`` and below.
"""
