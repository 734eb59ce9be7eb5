"""scripts/ruler_check.py: both faithfulness rulers on an intact and fractured phantom pair."""

import pytest

from script_loader import load_script


def test_reference_ruler_reads_a_phantom_crush_that_the_ratio_misses():
    from DAECounterfactualLib.bundle.store import load_bundle, resolve_bundle
    from DAECounterfactualResearch.evaluation import ct_body_measure

    check = load_script("ruler_check")
    config = load_bundle(resolve_bundle("vcf-ct")).config
    (reading,) = check.pair_readings(config, ct_body_measure(config), 101, 0.45, "crush", (0.0,))
    assert reading["reference"] == pytest.approx(0.45, abs=0.05)
    assert reading["ratio"] < 0.1
    rows = check.summary_rows([reading])
    assert rows[0].startswith("ratio | crush | 1 | 0.00") and rows[1].startswith("reference | crush | 1 | 1.00")
