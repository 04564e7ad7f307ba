"""docs/interface.md documents the interface in the repository: every metric name and every CLI
subcommand (and flag of `abm run`) appears in it, and README and ODD link to it and to the references."""
import argparse
from pathlib import Path

from abm.cli import build_parser
from abm.metrics import ALL_METRICS, METRIC_NAMES
from abm.definitions import PARTIES

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")


def _subparsers(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_every_metric_is_documented():
    missing = [m for m in METRIC_NAMES + ALL_METRICS if f"`{m}`" not in TEXT]
    assert not missing, missing
    for party in PARTIES:
        assert f"`risk_share.{party}`" in TEXT, party


def test_every_cli_subcommand_is_documented():
    sub = _subparsers(build_parser())
    names = list(sub.choices)
    assert {"run", "report", "viz", "bench", "validate", "economy"} <= set(names)
    for name in names:
        assert f"`abm {name}" in TEXT, name
    for name in _subparsers(sub.choices["economy"]).choices:
        assert f"`abm economy {name}" in TEXT, name


def test_every_flag_of_run_and_economy_build_is_documented():
    sub = _subparsers(build_parser())
    for parser in (sub.choices["run"], _subparsers(sub.choices["economy"]).choices["build"]):
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in TEXT, flag


def test_output_files_and_experiment_keys_are_documented():
    from abm.experiment import Experiment
    for name in ("results.parquet", "finance.parquet", "summary.csv", "manifest.json", "report.html",
                 "tail_risk.csv", "risk_runs.csv", "risk_incidence.csv", "robustness.csv", "runs.csv",
                 "LOCK"):
        assert name in TEXT, name
    for key in Experiment.model_fields:
        assert f"`{key}`" in TEXT, key


def test_readme_and_odd_link_the_interface_and_references():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    odd = (ROOT / "docs" / "ODD.md").read_text(encoding="utf-8")
    assert "docs/interface.md" in readme and "docs/references.md" in readme
    assert "(interface.md)" in odd and "(references.md)" in odd
