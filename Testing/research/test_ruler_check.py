"""scripts/studies/ruler_check.py: both faithfulness rulers on an intact and fractured phantom pair."""

import pytest



def test_reference_ruler_reads_a_phantom_crush_that_the_ratio_misses():
    from DAECounterfactualLib.bundle.registry import resolve_bundle
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualResearch.evaluation import ct_body_measure, pair_readings, ruler_summary_rows

    config = load_bundle(resolve_bundle("vcf-ct")).config
    (reading,) = pair_readings(config, ct_body_measure(config), 101, 0.45, "crush", (0.0,))
    assert reading["reference"] == pytest.approx(0.45, abs=0.05)
    assert reading["ratio"] < 0.1
    rows = ruler_summary_rows([reading])
    assert rows[0].startswith("ratio | crush | 1 | 0.00") and rows[1].startswith("reference | crush | 1 | 1.00")
