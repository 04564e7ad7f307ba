"""Regression baseline (as Starsim and PolicyEngine keep): headline metrics per arrangement for a fixed
seed and short horizon. A change that moves them shows up in review as a diff of the baseline file.

    .venv/bin/python -m abm.regression            # regenerate tests/regression_baseline.yaml
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from .metrics import METRIC_NAMES
from .model import ContractingModel
from .params import ARRANGEMENTS

BASELINE = Path(__file__).resolve().parent.parent / "tests" / "regression_baseline.yaml"
SETTINGS = {"seed": 20240401, "population_scale": 0.02, "months": 24}


def snapshot(settings: dict = SETTINGS) -> dict:
    out = {}
    for arr in ARRANGEMENTS:
        m = ContractingModel(arr, rng=settings["seed"], population_scale=settings["population_scale"])
        m.run(settings["months"])
        out[arr] = {k: round(float(m.metrics[k]), 6) for k in METRIC_NAMES if k != "money_balance_error"}
    return {"settings": dict(settings), "metrics": out}


def write(path: Path = BASELINE) -> None:
    data = snapshot()
    header = "# Regression baseline: regenerate with `python -m abm.regression` when a change is intended.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m abm.regression", description="Regenerate the regression baseline.")
    ap.add_argument("path", nargs="?", type=Path, default=BASELINE, help="where to write it (default: %(default)s)")
    path = ap.parse_args(argv).path
    write(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
