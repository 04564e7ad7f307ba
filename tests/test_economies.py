"""Studies across economies (issue 16 item 3): `economies:` in an experiment, one task per
economy × arrangement × point × replicate, an `economy` column in every table, statistics and
pairing within each economy, the report's "Systems compared" section, and resume (also after
SIGINT/SIGTERM) for such a study.

The economies are built with `abm economy build` from a synthetic national file in NHS Digital's
format (tests/test_economy_build.py: 3 ICBs of 4 sub-ICBs each).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from abm.cli import main
from abm.definitions import CUMULATIVE_METRICS, FINAL_YEAR_STEPS
from abm.errors import ConfigError
from abm.experiment import STOP_AFTER_ENV, load_experiment, run_experiment
from test_economy_build import National

FAKE = "experiment_fake_model:FakeModel"
TESTS = str(Path(__file__).resolve().parent)
TABLES = ["summary.csv", "runs.csv", "tail_risk.csv", "risk_runs.csv", "risk_incidence.csv"]


@pytest.fixture(scope="module")
def economies(tmp_path_factory) -> dict[str, Path]:
    """Three economies built from one synthetic national extract: two sub-ICBs and a whole ICB."""
    folder = tmp_path_factory.mktemp("national")
    nat = National(folder)
    out = {}
    for name, args in (("north", ["--sub-icb", "1AX"]), ("south", ["--sub-icb", "2CX"]),
                       ("east", ["--icb", "Q3A", "--map", str(nat.map)])):
        path = folder / f"{name}.yaml"
        assert main(["economy", "build", str(nat.all), *args, "--out", str(path)]) == 0
        out[name] = path
    return out


def _config(economies, **kw) -> dict:
    return {"name": "multi", "economies": [str(economies[n]) for n in ("north", "south", "east")],
            "arrangements": ["fragmented", "alliance", "icp_full"], "replications": 3, "seed": 5,
            "months": 14, "population_scale": 0.1, "risk_sources": ["activity"],
            "risk_replications": 2, **kw}


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("results.parquet", "finance.parquet"):
        assert pq.read_table(a / name).equals(pq.read_table(b / name)), name
    for name in TABLES:
        assert (a / name).is_file() == (b / name).is_file(), name
        if (a / name).is_file():
            assert (a / name).read_text() == (b / name).read_text(), name
    graphs = sorted(g.relative_to(a) for g in (a / "networks").rglob("*.graphml"))
    assert graphs and graphs == sorted(g.relative_to(b) for g in (b / "networks").rglob("*.graphml"))
    for g in graphs:
        assert (a / g).read_bytes() == (b / g).read_bytes(), g


def _finals(results: pd.DataFrame) -> pd.DataFrame:
    """Final-year value per (economy, arrangement, replicate, metric), as summary.csv defines it."""
    r = results[results["step"] > 0].sort_values("step")
    keys = ["economy", "arrangement", "replicate", "metric"]
    last = r.groupby(keys)["value"].last()
    tail = r.groupby(keys)["value"].apply(lambda v: v.iloc[-FINAL_YEAR_STEPS:].mean())
    cum = last.index.get_level_values("metric").isin(list(CUMULATIVE_METRICS))
    return pd.Series(np.where(cum, last, tail), index=last.index, name="value").reset_index()


# --------------------------------------------------------------------------- the schema
def _write_exp(tmp_path: Path, economies_yaml: str, extra: str = "") -> Path:
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: t\narrangements: [fragmented, alliance]\nreplications: 2\nseed: 7\n"
                   f"months: 4\npopulation_scale: 0.02\n{economies_yaml}\n{extra}")
    return exp


BAD = [
    ("not a list", "economies: north.yaml", ["field 'economies'", "valid list",
                                             "allowed: a non-empty list"]),
    ("empty", "economies: []", ["field 'economies'", "non-empty list", "allowed:"]),
    ("missing file", "economies: [default, nowhere.yaml]",
     ["field 'economies[1]'", "economy file not found", "'nowhere.yaml'", "allowed: a non-empty list"]),
    ("duplicate", "economies: [north.yaml, default, north.yaml]",
     ["field 'economies[2]'", "economy listed twice (as economies[0] too)", "each economy file once"]),
    ("default twice", "economies: [default, {name: d2, file: DEFAULT_FILE}]",
     ["field 'economies[1].file'", "listed twice", "'default' is dudley.yaml"]),
    ("same name", "economies: [north.yaml, {name: north, file: default}]",
     ["field 'economies[1]'", "two economies named 'north'", "{name: NAME, file: PATH}"]),
    ("both keys", "economy: north.yaml\neconomies: [default]",
     ["field 'economy'", "either economy or economies", "allowed:"]),
    ("unknown key", "economies: [{name: a, fiel: north.yaml}]",
     ["field 'economies[0].fiel'", "did you mean 'file'", "allowed: name, file"]),
    ("no file", "economies: [{name: a}]", ["field 'economies[0].file'", "required field missing"]),
    ("bad name", "economies: [{name: 'a.b', file: default}]",
     ["field 'economies[0].name'", "bad economy name", "letters, digits"]),
    ("not a name", "economies: [3]", ["field 'economies[0]'", "a file name or a mapping"]),
]


@pytest.mark.parametrize("text,fragments", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_economies_are_one_line_exit_2_in_run_and_validate(tmp_path, capsys, economies, text,
                                                               fragments):
    from abm.params import default_economy_path
    shutil.copy(economies["north"], tmp_path / "north.yaml")
    exp = _write_exp(tmp_path, text.replace("DEFAULT_FILE", str(default_economy_path())))
    for argv in (["validate", str(exp)], ["run", str(exp), "--out", str(tmp_path / "o"), "--quiet"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err, err
        for fragment in ["exp.yaml", *fragments]:
            assert fragment in err, (argv[0], fragment, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml", "north.yaml"]


def test_good_economies_validate_and_resolve_names(tmp_path, capsys, economies):
    shutil.copy(economies["north"], tmp_path / "north.yaml")
    exp = _write_exp(tmp_path, f"economies: [north.yaml, {{name: big, file: {economies['east']}}}, default]")
    assert main(["validate", str(exp)]) == 0
    assert "3 economies × 2 arrangements × 1 point(s) × 2 replicates = 12 runs" in capsys.readouterr().out
    loaded, _ = load_experiment(exp)
    assert loaded.economies == [{"name": "north", "file": str((tmp_path / "north.yaml").resolve())},
                                {"name": "big", "file": str(economies["east"].resolve())},
                                {"name": "default", "file": "default"}]
    again, _ = load_experiment(loaded.model_dump(mode="json"))   # the stored, resolved form reloads
    assert again.economies == loaded.economies


# --------------------------------------------------------------------------- outputs (fake model)
@pytest.fixture(scope="module")
def multi_run(tmp_path_factory, economies) -> Path:
    return run_experiment(_config(economies), out=tmp_path_factory.mktemp("m") / "o", workers=2,
                          model=FAKE)


def test_every_table_has_the_economy_column_in_study_order(multi_run):
    order = ["north", "south", "east"]
    res = pq.read_table(multi_run / "results.parquet").to_pandas()
    assert list(res.columns) == ["experiment", "economy", "arrangement", "point", "replicate", "seed",
                                 "step", "metric", "value"]
    assert list(dict.fromkeys(res["economy"])) == order
    assert len(res) == 3 * 3 * 3 * 15 * 3                 # economies × arrangements × reps × steps × metrics
    fin = pq.read_table(multi_run / "finance.parquet").to_pandas()
    assert list(fin.columns[:5]) == ["economy", "arrangement", "point", "replicate", "seed"]
    for name in TABLES:
        t = pd.read_csv(multi_run / name)
        assert t.columns[0] == "economy", name
        assert list(dict.fromkeys(t["economy"])) == order, name
    assert sorted(str(g.relative_to(multi_run / "networks")) for g in
                  (multi_run / "networks").rglob("*.graphml")) == sorted(
        f"{e}/{a}.graphml" for e in order for a in ("alliance", "fragmented", "icp_full"))
    m = json.loads((multi_run / "manifest.json").read_text())
    assert [e["name"] for e in m["economies"]] == order
    for e in m["economies"]:
        eco = Path(e["file"])
        assert e["population"] > 0 and e["practices"] > 0 and len(e["sha256"]) == 64 and eco.is_file()
    assert m["base_tasks"] == 27 and m["risk_tasks"] == 3 * 3 * 2 * 2
    # replicate r has the same seed in every economy and under every arrangement
    runs = pd.read_csv(multi_run / "runs.csv")
    assert runs.groupby("replicate")["seed"].nunique().max() == 1


def test_differences_pair_runs_within_one_economy(multi_run):
    res = pq.read_table(multi_run / "results.parquet").to_pandas()
    finals = _finals(res).set_index(["economy", "arrangement", "replicate", "metric"])["value"]
    s = pd.read_csv(multi_run / "summary.csv")
    checked = 0
    for row in s[s["arrangement"] != "fragmented"].dropna(subset=["diff_mean"]).itertuples():
        if row.metric.startswith("risk_share."):
            continue
        mine = finals.loc[(row.economy, row.arrangement)].xs(row.metric, level="metric")
        base = finals.loc[(row.economy, "fragmented")].xs(row.metric, level="metric")
        assert row.diff_mean == pytest.approx((mine - base).mean(), rel=1e-9, abs=1e-12)
        checked += 1
    assert checked == 3 * 2 * 3                            # economies × arrangements × metrics
    # the fake model's cost does not depend on the arrangement: paired within an economy the
    # difference is exactly zero; paired across economies (same seed, other population) it is not
    cost = s[(s["metric"] == "cost_per_capita") & (s["arrangement"] == "alliance")]
    assert (cost["diff_mean"] == 0).all() and len(cost) == 3
    cross = finals.loc[("north", "alliance")].xs("cost_per_capita", level="metric") - \
        finals.loc[("south", "fragmented")].xs("cost_per_capita", level="metric")
    assert (cross.abs() > 0).all()
    # means differ by economy (each economy's own runs)
    means = s[(s["metric"] == "cost_per_capita") & (s["arrangement"] == "fragmented")]["mean"]
    assert means.nunique() == 3


def test_risk_tables_are_within_each_economy(multi_run):
    inc = pd.read_csv(multi_run / "risk_incidence.csv")
    assert set(inc["economy"]) == {"north", "south", "east"}
    per = inc.groupby(["economy", "arrangement", "source", "direction"])["n"].max()
    assert (per == 2).all()                                # risk_replications, not 2 × economies
    tail = pd.read_csv(multi_run / "tail_risk.csv")
    assert (tail.groupby(["economy", "arrangement", "party", "measure"]).size() == 1).all()
    assert tail["n"].max() == 3                            # replicates of one economy


def test_single_economy_keeps_the_old_layout_and_a_list_of_one_carries_the_column(tmp_path, economies):
    cfg = {k: v for k, v in _config(economies, replications=2, months=3).items() if k != "economies"}
    old = run_experiment({**cfg, "economy": str(economies["north"])}, out=tmp_path / "one",
                         workers=1, model=FAKE)
    assert "economy" not in pq.read_schema(old / "results.parquet").names
    for name in TABLES:
        assert "economy" not in pd.read_csv(old / name).columns, name
    assert "economies" not in json.loads((old / "manifest.json").read_text())
    assert sorted(p.name for p in (old / "networks").iterdir())[0] == "alliance.graphml"
    listed = run_experiment({**cfg, "economies": [str(economies["north"])]}, out=tmp_path / "list",
                            workers=1, model=FAKE)
    a = pq.read_table(old / "results.parquet").to_pandas()
    b = pq.read_table(listed / "results.parquet").to_pandas()
    assert set(b["economy"]) == {"north"}
    pd.testing.assert_frame_equal(a, b.drop(columns="economy"))   # same runs, same numbers


def test_report_compares_systems_with_intervals(multi_run):
    from abm.report import build_report
    from abm.report._data import load
    from abm.report._systems import comparison_table, split
    page = build_report(multi_run).read_text()
    assert 'id="systems"' in page and "Systems compared" in page
    section = page[page.index('id="systems"'):]
    for name in ("north", "south", "east"):
        assert name in section
    assert "sections 1-7 show north" in page
    focus, systems = split(load(multi_run))
    assert set(focus.results.columns) >= {"arrangement", "replicate"} and "economy" not in focus.results
    assert focus.summary["point"].notna().all() and len(focus.summary) * 3 == len(load(multi_run).summary)
    table = comparison_table(systems)
    s = pd.read_csv(multi_run / "summary.csv").set_index(["economy", "arrangement", "metric"])
    for r in table.itertuples():                           # the section's numbers are summary.csv's
        want = s.loc[(r.economy, r.arrangement, r.metric)]
        assert (r.diff_mean, r.diff_ci_low, r.diff_ci_high) == pytest.approx(
            (want.diff_mean, want.diff_ci_low, want.diff_ci_high), nan_ok=True)
    assert set(table["economy"]) == {"north", "south", "east"}


# --------------------------------------------------------------------------- resume
def _interrupted(tmp_path: Path, cfg: dict, stop_after: int) -> Path:
    out = tmp_path / "cut"
    code = (f"import sys; sys.path.insert(0, {TESTS!r}); from abm.experiment import run_experiment; "
            f"run_experiment({cfg!r}, out={str(out)!r}, workers=2, model={FAKE!r})")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, STOP_AFTER_ENV: str(stop_after)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 75, proc.stderr
    return out


def test_multi_economy_run_resumes_to_identical_outputs(tmp_path, economies, multi_run):
    out = _interrupted(tmp_path, _config(economies), 11)
    done = []
    resumed = run_experiment(None, workers=1, resume=out, model=FAKE, progress=lambda d, t: done.append(d))
    assert done[0] == 11 and done[-1] == 27 + 36
    _same_outputs(multi_run, resumed)


def test_resume_refuses_a_changed_economy_file_and_stays_resumable(tmp_path, economies, multi_run):
    cfg = _config(economies)
    south = Path(cfg["economies"][1])
    copy = tmp_path / "south.yaml"
    shutil.copy(south, copy)
    cfg["economies"][1] = str(copy)
    out = _interrupted(tmp_path, cfg, 5)
    original = copy.read_text()
    copy.write_text(original.replace("registered people", "registered  people", 1))  # any edit
    with pytest.raises(ConfigError, match=r"south.yaml has changed since the interrupted run"):
        run_experiment(None, workers=1, resume=out, model=FAKE)
    assert not (tmp_path / ".cut.partial" / "LOCK").exists()
    copy.write_text(original)
    resumed = run_experiment(None, workers=1, resume=out, model=FAKE)
    res = pq.read_table(resumed / "results.parquet").to_pandas()
    ref = pq.read_table(multi_run / "results.parquet").to_pandas()
    pd.testing.assert_frame_equal(res, ref)                 # same names, same files' contents


def test_resume_after_the_finish_was_stopped_while_removing_parts(tmp_path, economies, multi_run):
    out = _interrupted(tmp_path, _config(economies), 40)
    shutil.rmtree(tmp_path / ".cut.partial" / "parts")      # as a kill inside finalize can leave it
    resumed = run_experiment(None, workers=2, resume=out, model=FAKE)
    _same_outputs(multi_run, resumed)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_leaves_a_resumable_unlocked_run(tmp_path, economies, multi_run, sig):
    cfg = _config(economies)
    out = tmp_path / "cut"
    code = (f"import sys; sys.path.insert(0, {TESTS!r}); from abm.experiment import run_experiment; "
            f"run_experiment({cfg!r}, out={str(out)!r}, workers=2, model={FAKE!r}, "
            f"log=lambda m: print(m, file=sys.stderr))")
    # slow enough steps that the run cannot finish while this process is starved of CPU (a signal that
    # lands after the last task runs no handler and the run ends normally: seen once under load)
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "ABM_FAKE_STEP_SECONDS": "0.05"},
                            stderr=subprocess.PIPE, text=True)
    parts = tmp_path / ".cut.partial" / "parts"
    deadline = time.monotonic() + 240                       # a guard against hanging, not a check
    while len(list(parts.glob("*.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode != 0 and proc.returncode != -signal.SIGTERM, (proc.returncode, err)
    assert "continue with: abm run --resume" in err, err
    assert not (tmp_path / ".cut.partial" / "LOCK").exists()  # released, not left to go stale
    stored = len(list(parts.glob("*.json")))
    assert 3 <= stored < 63
    resumed = run_experiment(None, workers=2, resume=out, model=FAKE)
    _same_outputs(multi_run, resumed)
    assert json.loads((resumed / "manifest.json").read_text())["resumed_tasks"] == stored


# --------------------------------------------------------------------------- the real model
def test_real_model_across_economies_local_pool_and_dask_identical(tmp_path, economies):
    pytest.importorskip("abm.model")
    cfg = {"name": "real-multi", "economies": [str(economies["north"]), str(economies["east"])],
           "arrangements": ["fragmented", "icp_full"], "replications": 2, "seed": 9, "months": 3,
           "population_scale": 0.01}
    a = run_experiment(cfg, out=tmp_path / "pool", workers=2)
    b = run_experiment(cfg, out=tmp_path / "dask", engine="dask", workers=2)
    _same_outputs(a, b)
    assert json.loads((b / "manifest.json").read_text())["engine"] == "dask"
    res = pq.read_table(a / "results.parquet").to_pandas()
    assert list(dict.fromkeys(res["economy"])) == ["north", "east"]
    pop = res[(res["metric"] == "population") & (res["step"] == 0)].groupby("economy")["value"].first() \
        if "population" in set(res["metric"]) else None
    if pop is not None:
        assert pop["east"] > pop["north"]                  # the whole ICB is bigger than one sub-ICB
    finals = _finals(res).set_index(["economy", "arrangement", "replicate", "metric"])["value"]
    s = pd.read_csv(a / "summary.csv")
    row = s[(s["economy"] == "east") & (s["arrangement"] == "icp_full")
            & (s["metric"] == "cost_per_capita")].iloc[0]
    want = (finals.loc[("east", "icp_full")].xs("cost_per_capita", level="metric")
            - finals.loc[("east", "fragmented")].xs("cost_per_capita", level="metric")).mean()
    assert row["diff_mean"] == pytest.approx(want, rel=1e-9)


def test_a_scale_too_small_for_one_economy_is_refused_by_validate_as_by_run(tmp_path, capsys, economies):
    # north (one sub-ICB) at this scale has fewer than 100 simulated people; the default has more
    from abm.params import load_economy
    north = load_economy(economies["north"])["population"]["total"]["value"]
    scale = 60 / north
    shutil.copy(economies["north"], tmp_path / "north.yaml")
    exp = _write_exp(tmp_path, "economies: [default, north.yaml]").read_text()
    (tmp_path / "exp.yaml").write_text(exp.replace("population_scale: 0.02", f"population_scale: {scale:.6g}"))
    for argv in (["validate", str(tmp_path / "exp.yaml")],
                 ["run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "o"), "--quiet"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "field 'population_scale'" in err and "economy 'north'" in err and "allowed: at least" in err, err
    assert not (tmp_path / "o").exists()
