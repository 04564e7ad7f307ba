"""The default economy under `fragmented` stays inside the reference ranges (DOMAIN.md §3, §5)."""
from abm.calibration import calibrate


def test_status_quo_within_reference_ranges():
    df = calibrate(months=12, scale=0.1, seed=3)
    bad = df[~df["ok"]]
    assert bad.empty, bad[["metric", "model", "low", "high"]].to_string()
