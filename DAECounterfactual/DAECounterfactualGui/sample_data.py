"""The sample CT in Slicer's Sample Data module: a real lumbar CT (L2-L4) with vertebra labels from the pinned
tptbox wheel on PyPI. Fetching it needs no torch and no model, only the network once (pip, sha256-checked)."""

from pathlib import Path

import slicer

CATEGORY = "DAE Counterfactual"
SAMPLE_NAME = "DAECF spine CT"
THUMBNAIL = Path(__file__).resolve().parents[1] / "Resources" / "Icons" / "DAECounterfactualSampleCT.png"


def loadSampleCT(source=None) -> list:
    """Download (first time) and load the sample CT and its vertebra label map; returns the two nodes."""
    from DAECounterfactualLib.io.sampledata import fetch_sample_wheel, sample_files

    with slicer.util.tryWithErrorDisplay("Could not get the sample CT.", waitCursor=True):
        fetch_sample_wheel()
        files = sample_files("spine-ct")
        volume = slicer.util.loadVolume(str(files["image"]), {"name": "DAECF sample CT"})
        labels = slicer.util.loadLabelVolume(str(files["vertebra_mask"]), {"name": "DAECF sample CT vertebrae"})
    return [volume, labels]


def registerSampleData() -> None:
    """List the sample in Sample Data. Its files come out of a wheel, so a custom downloader fetches them; Sample
    Data requires the file lists even then (empty here)."""
    import SampleData

    logic = SampleData.SampleDataLogic
    if hasattr(logic, "registerCustomSampleDataCategory"):  # Slicer 5.10+
        logic.registerCustomSampleDataCategory(CATEGORY, title=CATEGORY)
    logic.registerCustomSampleDataSource(
        category=CATEGORY, sampleName=SAMPLE_NAME, thumbnailFileName=str(THUMBNAIL), uris=[], fileNames=[],
        customDownloader=loadSampleCT)
