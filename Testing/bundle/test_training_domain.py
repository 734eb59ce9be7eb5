"""What a bundle was trained on (``trained_on`` in config.json) and the reasons a request falls outside it."""

from __future__ import annotations

import json

import pytest

from DAECounterfactualLib.bundle.domain import TrainingDomain, level_kind, level_span
from DAECounterfactualLib.bundle.spec import BundleConfig

LUMBAR = TrainingDomain("vertebra", ("L5", "T12", "L1", "L2", "L3", "L4"), "HU")
LUMBAR_DISCS = TrainingDomain("disc", ("L4-L5", "L5-S1", "L3-L4"))


def test_levels_are_kept_in_anatomical_order_and_shown_as_runs():
    assert LUMBAR.levels == ("T12", "L1", "L2", "L3", "L4", "L5")
    assert level_span(LUMBAR.levels) == "T12–L5"
    assert level_span(("C3", "C4", "C5", "C6", "C7", "T1", "T10", "T11", "T12", "L1")) == "C3–T1, T10–L1"
    assert level_span(("T12", "T13", "L1")) == "T12–L1" and level_span(("L1", "L3")) == "L1, L3"
    assert level_span(LUMBAR_DISCS.levels) == "L3-L4 to L5-S1"
    assert LUMBAR.describe() == "vertebrae T12–L5, HU"


def test_a_named_level_outside_or_of_the_other_kind_is_a_reason_an_unknown_one_is_not():
    assert LUMBAR.outside("C5") == "level C5 lies outside the trained levels T12–L5"
    assert LUMBAR.outside("L4-L5") == "L4-L5 is a disc; this model grades vertebrae"
    assert LUMBAR_DISCS.outside("C5-C6") == "level C5-C6 lies outside the trained levels L3-L4 to L5-S1"
    assert LUMBAR_DISCS.outside("L4") == "L4 is a vertebra; this model grades discs"
    for inside_or_unknown in ("L3", "l3", " L3 ", "rank 3", "F-1", "", None):
        assert LUMBAR.outside(inside_or_unknown) == ""
    assert TrainingDomain("vertebra").outside("C5") == ""  # levels not stated: the kind is still checked
    assert TrainingDomain("vertebra").outside("C5-C6") != ""
    assert TrainingDomain("image", units="8-bit RGB").outside("L3") == ""
    assert (level_kind("L4-L5"), level_kind("T13"), level_kind("rank 2")) == ("disc", "vertebra", None)


@pytest.mark.parametrize("kind, levels, message", [
    ("vertebrae", (), "target_kind must be one of"),
    ("vertebra", ("L4-L5",), "are not vertebra level names"),
    ("disc", ("L4",), "are not disc level names"),
    ("vertebra", ("l4",), "are not vertebra level names"),
    ("vertebra", ("L7",), "are not vertebra level names"),
])
def test_a_wrong_domain_is_refused_naming_the_field(kind, levels, message):
    with pytest.raises(ValueError, match=message):
        TrainingDomain(kind, levels)


def test_the_config_round_trips_it_and_an_older_config_without_it_checks_no_levels(ct_bundle_path):
    data = json.loads((ct_bundle_path / "config.json").read_text())
    config = BundleConfig.from_dict(data)
    assert config.trained_on.levels == ("L1", "L2", "L3") and BundleConfig.from_dict(config.to_dict()) == config
    del data["trained_on"]
    older = BundleConfig.from_dict(data)
    assert older.trained_on is None and older.outside("C5") == "" and "trained_on" not in older.to_dict()
    assert config.outside("C5") == "level C5 lies outside the trained levels L1–L3"
