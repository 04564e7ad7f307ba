"""Bad input: every case gives exit 2, one line naming file, field, value and what is allowed,
no traceback, and no output directory left behind (issue 4, point 3)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from abm.cli import main
from abm.experiment import Experiment, load_experiment

GOOD = """\
name: t
arrangements: [fragmented, alliance]
replications: 2
seed: 7
months: 24
population_scale: 0.02
"""


def _with(extra: str = "", drop: str | None = None, replace: dict | None = None) -> str:
    lines = [ln for ln in GOOD.splitlines() if not (drop and ln.startswith(drop + ":"))]
    for key, value in (replace or {}).items():
        lines = [f"{key}: {value}" if ln.startswith(key + ":") else ln for ln in lines]
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)


# id, file text (None: no file), extra argv, fragments the one-line message must contain
CASES = [
    ("missing file", None, [], ["exp.yaml", "file not found"]),
    ("yaml syntax", "name: t\narrangements: [fragmented\nreplications: 2\n", [],
     ["exp.yaml", "YAML syntax error at line 3"]),
    ("unknown key", _with(replace={"replications": "2\nreplicatons: 3"}), [],
     ["exp.yaml", "replicatons", "did you mean 'replications'", "allowed:"]),
    ("unknown key in shock", _with("shocks:\n  - {kind: demand_surge, month: 3, sise: 0.1}\n"), [],
     ["shocks[0].sise", "did you mean 'size'"]),
    ("wrong type", _with(replace={"replications": "ten"}), [],
     ["exp.yaml", "field 'replications'", "'ten'", "integer"]),
    ("wrong type list", _with(replace={"arrangements": "fragmented"}), [],
     ["field 'arrangements'", "'fragmented'", "list"]),
    ("probability above 1",
     _with("overrides:\n  transitions.discharge_to_community: [0.1, 0.1, 1.2, 0.2, 0.3, 0.4, 0.5]\n"), [],
     ["exp.yaml", "overrides.transitions.discharge_to_community", "1.2", "0.0 to 1.0"]),
    ("share below 0", _with("overrides:\n  prevention.budget_share: -0.1\n"), [],
     ["overrides.prevention.budget_share", "-0.1", "0.0 to 1.0"]),
    ("population zero", _with(replace={"population_scale": "0"}), [],
     ["field 'population_scale'", "(got 0)", "> 0 and <= 1"]),
    ("population negative", _with(replace={"population_scale": "-0.5"}), [],
     ["field 'population_scale'", "-0.5"]),
    ("population above 1", _with(replace={"population_scale": "1.5"}), [],
     ["field 'population_scale'", "1.5"]),
    ("unknown arrangement", _with(replace={"arrangements": "[fragmented, icp_ful]"}), [],
     ["field 'arrangements[1]'", "'icp_ful'", "did you mean 'icp_full'", "prime_contractor"]),
    ("empty arrangements", _with(replace={"arrangements": "[]"}), [],
     ["field 'arrangements'", "non-empty list"]),
    ("missing arrangements", _with(drop="arrangements"), [],
     ["field 'arrangements'", "required"]),
    ("replications zero", _with(replace={"replications": "0"}), [],
     ["field 'replications'", "(got 0)", ">= 1"]),
    ("replications on command line", GOOD, ["--replications", "0"],
     ["command line", "--replications", "(got 0)"]),
    ("horizon zero", _with(replace={"months": "0"}), [], ["field 'months'", "(got 0)", "1 to 600"]),
    ("horizon absurd", _with(replace={"months": "6000"}), [], ["field 'months'", "6000", "1 to 600"]),
    ("horizon on command line", GOOD, ["--months", "601"], ["--months", "601", "1 to 600"]),
    ("shock after horizon", _with("shocks:\n  - {kind: demand_surge, month: 30, size: 0.1}\n"), [],
     ["exp.yaml", "shocks[0].month", "(got 30)", "1 to 24"]),
    ("shock month zero", _with("shocks:\n  - {kind: demand_surge, month: 0, size: 0.1}\n"), [],
     ["shocks[0].month", "(got 0)"]),
    ("unknown shock kind", _with("shocks:\n  - {kind: demand_surg, month: 3, size: 0.1}\n"), [],
     ["shocks[0].kind", "did you mean 'demand_surge'"]),
    ("shares not summing to 1",
     _with("overrides:\n  arrangement.alliance.risk_shares: {ccg: 0.5}\n"), [],
     ["exp.yaml", "overrides.arrangement.alliance.risk_shares", "sum to 1"]),
    ("override of an arrangement not compared",
     _with("overrides:\n  arrangement.contract.contract_years: 3\n"), [],
     ["overrides.arrangement.contract.contract_years", "applies to none of the arrangements compared",
      "prime_contractor"]),
    ("mistyped override of an arrangement not compared",
     _with("overrides:\n  arrangement.contract.contract_yeras: 3\n"), [],
     ["overrides.arrangement.contract.contract_yeras", "did you mean 'contract_years'"]),
    ("unknown parameter", _with("overrides:\n  prevention.budget_shar: 0.03\n"), [],
     ["overrides.prevention.budget_shar", "did you mean 'prevention.budget_share'"]),
    ("economy missing", _with("economy: nowhere.yaml\n"), [],
     ["field 'economy'", "'nowhere.yaml'", "not found"]),
    ("not a mapping", "- a\n- b\n", [], ["exp.yaml", "mapping"]),
    ("empty file", "", [], ["exp.yaml", "empty"]),
    ("sweep bound out of range",
     _with("uncertainties:\n  method: lhs\n  samples: 4\n  parameters:\n"
           "    prevention.budget_share: {low: 0.01, high: 1.5}\n"), [],
     ["uncertainties.parameters.prevention.budget_share", "1.5"]),
    ("sweep without samples",
     _with("uncertainties:\n  method: sobol\n  parameters:\n"
           "    prevention.budget_share: {low: 0.01, high: 0.05}\n"), [],
     ["uncertainties", "needs 'samples'"]),
    ("sobol samples not a power of 2",
     _with("uncertainties:\n  method: sobol\n  samples: 100\n  parameters:\n"
           "    prevention.budget_share: {low: 0.01, high: 0.05}\n"), [],
     ["field 'uncertainties'", "power of 2 (got 100)"]),
    ("sweep low above high",
     _with("uncertainties:\n  method: grid\n  parameters:\n"
           "    prevention.budget_share: {low: 0.05, high: 0.01}\n"), [],
     ["uncertainties.parameters.prevention.budget_share", "must be below"]),
]


@pytest.mark.parametrize("text,argv,fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys, text, argv, fragments):
    exp = tmp_path / "exp.yaml"
    if text is not None:
        exp.write_text(text)
    out = tmp_path / "out"
    rc = main(["run", str(exp), "--out", str(out), "--quiet", "--workers", "1", *argv])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2, captured
    assert "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["exp.yaml"] if text is not None else [])


@pytest.mark.parametrize("text,argv,fragments", [c[1:] for c in CASES if not c[2]],
                         ids=[c[0] for c in CASES if not c[2]])
def test_validate_rejects_the_same_cases(tmp_path, capsys, text, argv, fragments):
    exp = tmp_path / "exp.yaml"
    if text is not None:
        exp.write_text(text)
    assert main(["validate", str(exp)]) == 2
    assert fragments[-1] in capsys.readouterr().err


def test_bad_economy_file_is_reported_against_that_file(tmp_path, capsys):
    from abm.params import default_economy_path
    text = default_economy_path().read_text()
    assert "age_share" in text
    import yaml
    eco = yaml.safe_load(text)
    eco["population"]["age_share"]["value"][0] += 0.2
    (tmp_path / "eco.yaml").write_text(yaml.safe_dump(eco))
    (tmp_path / "exp.yaml").write_text(_with("economy: eco.yaml\n"))
    assert main(["run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "eco.yaml" in err and "sum to 1" in err
    assert main(["validate", str(tmp_path / "eco.yaml")]) == 2


def test_console_script_exit_code_and_single_line(tmp_path):
    """The installed `abm` script, not just main(): exit status 2 and one stderr line."""
    abm = Path(sys.executable).with_name("abm")
    (tmp_path / "exp.yaml").write_text(_with(replace={"months": "0"}))
    proc = subprocess.run([str(abm), "run", "exp.yaml", "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "months" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_good_file_loads_and_resolves_economy_relative_to_the_file(tmp_path):
    from abm.params import default_economy_path
    sub = tmp_path / "exps"
    sub.mkdir()
    (tmp_path / "eco.yaml").write_text(default_economy_path().read_text())
    (sub / "exp.yaml").write_text(_with("economy: ../eco.yaml\n"))
    exp, file = load_experiment(sub / "exp.yaml")
    assert isinstance(exp, Experiment) and file == str(sub / "exp.yaml")
    assert exp.economy == str((tmp_path / "eco.yaml").resolve())
    assert exp.population_scale == 0.02 and exp.shocks == [] and exp.overrides == {}


def test_default_experiment_is_valid_and_compares_all_six(capsys):
    from abm.experiment import default_experiment_path
    from abm.params import ARRANGEMENTS
    path = default_experiment_path()
    exp, _ = load_experiment(path)
    assert exp.arrangements == list(ARRANGEMENTS) and exp.economy == "default"
    assert exp.replications >= 2
    assert main(["validate", str(path)]) == 0
    assert "ok (experiment" in capsys.readouterr().out
