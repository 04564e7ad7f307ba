"""Headline metrics per arrangement match the committed baseline (regenerate: python -m abm.regression)."""
import pytest
import yaml

from abm.regression import BASELINE, snapshot


def test_matches_regression_baseline():
    base = yaml.safe_load(BASELINE.read_text())
    now = snapshot(base["settings"])
    diffs = []
    for arr, metrics in base["metrics"].items():
        for k, v in metrics.items():
            got = now["metrics"][arr][k]
            if got != pytest.approx(v, rel=1e-4, abs=1e-6):
                diffs.append(f"{arr}.{k}: baseline {v} now {got}")
    assert not diffs, "model output changed; if intended run `python -m abm.regression`:\n" + "\n".join(diffs)


def test_help_writes_nothing(tmp_path, monkeypatch, capsys):
    """`--help` prints usage and exits: it is not taken as the path to write (a file named --help was)."""
    import pytest
    from abm import odd, regression
    monkeypatch.chdir(tmp_path)
    for main in (regression.main, odd.main):
        with pytest.raises(SystemExit) as e:
            main(["--help"])
        assert e.value.code == 0 and "usage:" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
