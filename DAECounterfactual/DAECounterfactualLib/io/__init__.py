"""Files in and out: volumes (NIfTI/NRRD/MHA/DICOM, LPS to RAS), vertebra positions, 2D image sets, sample data,
atomic writes. Imports nothing else of the package but ``errors``.
"""
