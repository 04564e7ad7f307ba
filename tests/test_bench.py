"""`abm bench` runs on a tiny size and prints its JSON fields last (no timing assertions)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from abm import bench

REQUIRED = ("patients", "months", "seconds", "patient_months_per_s", "peak_rss_mb")
TINY = ["--patients", "1500", "--months", "2", "--repeats", "1",
        "--reference-patients", "200", "--reference-months", "2"]


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_bench_main_prints_json_last(capsys):
    assert bench.main(TINY) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) > 1          # human lines first
    result = _last_json(out)
    for key in REQUIRED:
        assert key in result, key
    assert result["months"] == 2
    assert result["patients"] == pytest.approx(1500, abs=2)
    assert result["seconds"] > 0 and result["patient_months_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["speedup_vs_mesa_agents"] > 0
    assert result["reference"]["patients"] == pytest.approx(200, abs=2)


def test_bench_quiet_all_arrangements_without_reference(capsys):
    assert bench.main(["--patients", "800", "--months", "1", "--repeats", "1", "--arrangement", "all",
                       "--reference-patients", "0", "--quiet", "--no-warmup"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result["arrangements"]) == set(bench.ARRANGEMENTS)
    assert "speedup_vs_mesa_agents" not in result


def test_bench_rejects_unknown_arrangement(capsys):
    assert bench.main(["--arrangement", "nope", "--patients", "100", "--months", "1"]) == 2
    assert "unknown arrangement" in capsys.readouterr().err


def test_model_kwargs_sizes():
    total = bench.default_population()
    assert bench.model_kwargs(None) == {"population_scale": 1.0}
    assert bench.model_kwargs(total // 2)["population_scale"] == pytest.approx(0.5, abs=1e-5)
    big = bench.model_kwargs(total * 3)
    assert big["economy__population__total"] == total * 3


def test_reference_agents_step():
    from abm.reference import ReferenceModel, poisson_inverse
    ref = ReferenceModel(150, rng=3)
    assert len(ref.agents) == pytest.approx(150, abs=2)
    for _ in range(2):
        ref.step()
    assert ref.month == 2
    assert poisson_inverse(0.0, 0.5, 5) == 0
    assert poisson_inverse(50.0, 0.99, 3) == 3       # capped at kmax


def test_bench_on_another_economy(capsys):
    from abm.params import config_dir
    eco = str(config_dir() / "economies" / "black_country.yaml")
    assert bench.main(["--economy", eco, "--patients", "3000", "--months", "2", "--repeats", "1",
                       "--reference-patients", "0", "--quiet", "--no-warmup"]) == 0
    result = _last_json(capsys.readouterr().out)
    assert result["economy"] == eco and result["patients"] == pytest.approx(3000, abs=5)
    ls = result["linear_scaling"]                  # against the default economy, timed in turn (no timed assertion)
    assert ls["reference_economy"] == "default" and ls["reference_patients"] == bench.default_population()
    assert ls["ratio"] > 0 and ls["cpu_ratio"] > 0
    assert ls["predicted_seconds"] == pytest.approx(ls["reference_seconds"] * ls["patient_months_ratio"])
    assert len(ls["pair_ratios"]) == 1 and ls["pair_ratio_median"] == ls["pair_ratios"][0] > 0
    assert ls["alternating_cpu_ratio"] > 0 and ls["alternating_block_months"] == 12
    assert ls["alternating_cpu_seconds"] > 0 and ls["alternating_reference_cpu_seconds"] > 0


def test_alternating_ratio_compares_cpu_per_patient_month():
    """Stepped in turn, blocks of 2 months (the last block shorter): both economies are timed (no timed
    assertion on the ratio itself)."""
    r = bench.time_alternating("fragmented", 2000, 3, 1, None, block=2)
    assert r["alternating_block_months"] == 2
    assert r["alternating_cpu_seconds"] > 0 and r["alternating_reference_cpu_seconds"] > 0
    assert r["alternating_cpu_ratio"] > 0
    assert len(r["alternating_block_ratios"]) == 2 and all(x > 0 for x in r["alternating_block_ratios"])
    assert r["alternating_block_ratio_median"] == pytest.approx(np.median(r["alternating_block_ratios"]))
    assert r["alternating_block_ratio_interval"] is None          # two blocks: too few for an interval


def test_median_interval_uses_binomial_ranks():
    """Ten values: the 2nd and 9th smallest (coverage 97.9%: one rank further in would be 89%); six: the
    extremes (96.9%); five: none (no pair of ranks reaches 95%). Order of the input does not matter."""
    x = [1.07, 0.93, 1.01, 0.99, 1.20, 0.80, 1.00, 0.97, 1.03, 0.95]
    assert bench.median_interval(x) == [0.93, 1.07]
    assert bench.median_interval(x[:6]) == [0.8, 1.2]
    assert bench.median_interval(x[:5]) is None
    assert bench.median_interval(x, level=0.8) == [0.95, 1.03]


def test_bench_economy_without_linear_reference(capsys):
    from abm.params import config_dir
    eco = str(config_dir() / "economies" / "dudley.yaml")
    assert bench.main(["--economy", eco, "--patients", "1500", "--months", "1", "--repeats", "1", "--no-linear",
                       "--reference-patients", "0", "--quiet", "--no-warmup"]) == 0
    assert "linear_scaling" not in _last_json(capsys.readouterr().out)


def test_linear_scaling_ratio():
    r = {"patients": 400, "patient_months": 800, "seconds": 3.0, "cpu_seconds": 2.0}
    ref = {"patients": 100, "patient_months": 200, "seconds": 1.0, "cpu_seconds": 1.0}
    ls = bench.linear_scaling(r, ref)
    assert ls["predicted_seconds"] == 4.0 and ls["ratio"] == 0.75 and ls["cpu_ratio"] == 0.5
    assert "pair_ratios" not in ls
    ls = bench.linear_scaling({**r, "pair_ratios": [0.9, 1.3, 1.0]}, ref)
    assert ls["pair_ratios"] == [0.9, 1.3, 1.0] and ls["pair_ratio_median"] == 1.0


def test_bench_bad_economy_is_one_line(capsys, tmp_path):
    assert bench.main(["--economy", str(tmp_path / "missing.yaml"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.yaml" in err[0]
