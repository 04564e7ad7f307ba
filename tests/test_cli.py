"""The `abm` command line: run (table, paths, overrides, resume), validate, report, viz, bench."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import abm.experiment
from abm.cli import main, print_summary
from abm.experiment import STOP_AFTER_ENV, default_experiment_path

ABM = str(Path(sys.executable).with_name("abm"))
SMALL = """\
name: small
arrangements: [fragmented, alliance, icp_full]
replications: 2
seed: 4
months: 3
population_scale: 0.02
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def _abm(*args, cwd, env=None, timeout=600):
    return subprocess.run([ABM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_run_prints_table_results_and_report_paths(small, tmp_path):
    proc = _abm("run", "small.yaml", "--workers", "2", "--months", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "reports" / "small").resolve()                    # default --out
    assert f"results: {out}" in proc.stdout
    assert "report:" in proc.stdout
    table = proc.stdout.split("Arrangements compared", 1)[1]       # the three tables
    for arrangement in ("fragmented", "alliance", "icp_full"):
        assert arrangement in table
    assert "cost per capita" in table.lower() and "integrated handoff" in table.lower()
    # 2 replicates: the covariance shares are too few to read, so they are not printed
    assert "share of variation across the declared uncertainties (covariance risk shares): " \
           "not shown" in " ".join(proc.stdout.split())
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["months"] == 2 and m["workers"] == 2               # --months applied
    assert pq.read_table(out / "results.parquet").column("step").to_pylist()[-1] == 2


def test_quiet_run_prints_only_paths(small, tmp_path):
    proc = _abm("run", "small.yaml", "--quiet", "--workers", "1", "--replications", "1",
                "--seed", "99", "--out", "o", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert [ln.split(":")[0] for ln in proc.stdout.splitlines()] in (["results", "report"],)
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["config"]["replications"] == 1 and m["config"]["seed"] == 99


def test_killed_run_resumes_from_the_command_line(small, tmp_path):
    cut = _abm("run", "small.yaml", "--quiet", "--workers", "2", "--out", "cut", cwd=tmp_path,
               env={STOP_AFTER_ENV: "2"})
    assert cut.returncode == 75 and not (tmp_path / "cut").exists()
    again = _abm("run", "small.yaml", "--quiet", "--out", "cut", cwd=tmp_path)
    assert again.returncode == 2 and "--resume" in again.stderr         # not silently restarted
    res = _abm("run", "--resume", "cut", "--workers", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "2 of 6 runs already stored" in res.stderr
    full = _abm("run", "small.yaml", "--quiet", "--workers", "1", "--out", "full", cwd=tmp_path)
    assert full.returncode == 0
    for name in ("results.parquet", "finance.parquet"):
        assert pq.read_table(tmp_path / "cut" / name).equals(pq.read_table(tmp_path / "full" / name))
    assert (tmp_path / "cut" / "summary.csv").read_text() == (tmp_path / "full" / "summary.csv").read_text()
    m = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert m["source"] == "small.yaml" and m["resumed_tasks"] == 2
    assert m["source_sha256"] == hashlib.sha256(small.read_bytes()).hexdigest()


def test_run_without_argument_uses_the_default_experiment(small, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(abm.experiment, "default_experiment_path", lambda: small)
    assert main(["run", "--quiet", "--workers", "1", "--out", str(tmp_path / "d")]) == 0
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["experiment"] == "small"


def test_default_experiment_ships_with_the_package():
    path = default_experiment_path()
    assert path.name == "compare.yaml" and path.is_file()
    assert path.parent.name == "experiments"


def test_summary_table_shows_intervals(small, tmp_path, capsys):
    out = abm.experiment.run_experiment(small, out=tmp_path / "o", workers=1)
    capsys.readouterr()
    print_summary(out)
    text = capsys.readouterr().out
    assert "fragmented" in text and "[" in text and "over 2 replicates" in text
    assert "too few for an" in text                    # 2 runs: no covariance numbers printed


def test_terminal_summary_fits_100_columns_in_the_reports_units(tmp_path, capsys):
    """Six arrangements with risk sources: every line fits 100 columns; shares are printed in
    per cent and money in £, formatted as the report formats them, and the integration
    metrics are there."""
    sys.path.insert(0, str(Path(__file__).parent))
    from synthetic import write_synthetic_results
    from abm.report._data import headline_table, load
    from abm.style import format_value
    six = ("fragmented", "alliance", "prime_contractor", "prime_provider", "icp_partial",
           "icp_full")
    out = write_synthetic_results(tmp_path / "six", arrangements=six, risk_sources=True,
                                  replicates=6)
    capsys.readouterr()
    print_summary(out)
    text = capsys.readouterr().out
    widths = [len(line) for line in text.splitlines()]
    assert max(widths) <= 100, max(widths)
    assert "Arrangements compared: integration" in text and "Population-based" in text
    t = headline_table(load(out)).set_index(["arrangement", "metric"])
    share = t.loc[("icp_full", "integrated_handoff_share")]
    cost = t.loc[("alliance", "cost_per_capita")]
    assert format_value(share["mean"], "share") in text and "%" in format_value(share["mean"], "share")
    assert f"[{format_value(share['ci_low'], 'share')}, {format_value(share['ci_high'], 'share')}]" in text
    assert format_value(cost["mean"], "gbp") in text and "£" in text
    assert all(key in text for key in six)
    assert "…" not in text    # nothing cut off (rich marks a truncated header or cell so)
    assert "Who bears which risk" in text


def test_usage_errors_are_one_line_exit_2(capsys):
    for argv in (["run", "--engine", "spark"], ["run", "--workers", "0"], ["frobnicate"],
                 ["run", "--months", "three"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("abm"), err


def test_validate_accepts_economy_arrangement_and_experiment(capsys):
    from abm.params import arrangement_path, default_economy_path
    rc = main(["validate", str(default_economy_path()), str(arrangement_path("alliance")),
               str(default_experiment_path())])
    out = capsys.readouterr().out
    assert rc == 0
    assert "ok (economy" in out and "ok (arrangement 'alliance', label 'Alliance')" in out
    assert "ok (experiment" in out


def test_report_rejects_a_folder_without_results(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "results.parquet" in err


@pytest.mark.parametrize("command,modules", [(["viz"], ("abm.viz", "abm.app")),
                                             (["bench"], ("abm.bench",)),
                                             (["report", "."], ("abm.report",))])
def test_missing_optional_parts_say_not_available(command, modules, monkeypatch, capsys, tmp_path):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    if command[0] == "report":
        (tmp_path / "results.parquet").write_text("x\n")
        command = ["report", str(tmp_path)]
    assert main(command) == 1
    assert "not available yet" in capsys.readouterr().err


def test_bench_hands_its_arguments_over(monkeypatch):
    seen = []
    fake = types.SimpleNamespace(main=lambda argv: seen.append(argv) or 0)
    monkeypatch.setitem(sys.modules, "abm.bench", fake)
    assert main(["bench", "--patients", "1000", "--months", "2", "--arrangement", "icp_full"]) == 0
    assert seen == [["--patients", "1000", "--months", "2", "--arrangement", "icp_full"]]


def test_viz_calls_serve_with_host_and_port(monkeypatch):
    seen = []
    fake = types.SimpleNamespace(serve=lambda host, port: seen.append((host, port)) or 0)
    monkeypatch.setitem(sys.modules, "abm.viz", fake)
    assert main(["viz", "--port", "9001", "--host", "0.0.0.0"]) == 0
    assert seen == [("0.0.0.0", 9001)]


def test_summary_shows_who_bears_which_risk_holder_vs_commissioner_side(tmp_path):
    path = tmp_path / "risk.yaml"
    path.write_text(SMALL.replace("months: 3", "months: 4")
                    + "risk_sources: [activity, quality]\nrisk_replications: 2\n")
    proc = _abm("run", "risk.yaml", "--workers", "2", "--out", "o", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.index("holder side (lead + providers)") < text.index(
        "commissioner side (funder + commissioner)") < text.index("share of variation")
    rows = [ln for ln in text.splitlines() if ln.count("│") > 2]
    activity = [ln for ln in rows if ln.split("│")[1].strip() == "activity"]
    quality = [ln for ln in rows if ln.split("│")[1].strip() == "quality"]
    assert len(activity) == len(quality) == 2                      # one row in each side's table
    assert all("±" in ln for ln in activity)
    assert all(set(ln.split("│")[2].strip()) == {"–"} for ln in quality)   # moved no money
    v = _abm("validate", "risk.yaml", cwd=tmp_path)
    assert "+ 18 paired risk-source runs (2 sources)" in v.stdout
