"""Sweep points for an experiment's `uncertainties`: grid, Latin hypercube or Sobol (SALib).

A point is a mapping of dotted parameter names to values, applied on top of the experiment's
`overrides`. Points are numbered 0..P-1 in the order returned here; that order is part of the
results (the `point` column), so it must depend only on the configuration.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def salib_problem(parameters: dict[str, Any]) -> dict:
    """The SALib 'problem' dict for parameters with low/high bounds, in declared order."""
    names = list(parameters)
    return {"num_vars": len(names), "names": names,
            "bounds": [[float(parameters[n].low), float(parameters[n].high)] for n in names]}


def _rounded(parameters: dict[str, Any], names: list[str], row) -> dict[str, Any]:
    point = {}
    for name, value in zip(names, row):
        spec = parameters[name]
        point[name] = int(round(float(value))) if spec.integer else float(value)
    return point


def sample_points(uncertainties, seed: int) -> list[dict[str, Any]]:
    """Expand an `Uncertainties` spec into sweep points; no spec means one point with no changes.
    With `defaults: k`, k points with no changes (the defaults) follow the sampled ones."""
    if uncertainties is None:
        return [{}]
    params = uncertainties.parameters
    names = list(params)
    sample_seed = seed if uncertainties.seed is None else uncertainties.seed
    if uncertainties.method == "grid":
        axes = [params[n].grid_values() for n in names]
        return ([dict(zip(names, combo)) for combo in itertools.product(*axes)]
                + [{} for _ in range(_defaults(uncertainties))])
    problem = salib_problem(params)
    if uncertainties.method == "lhs":
        from SALib.sample import latin
        rows = latin.sample(problem, uncertainties.samples, seed=sample_seed)
    else:  # sobol: N * (D + 2) rows (first-order and total indices only)
        from SALib.sample import sobol
        rows = sobol.sample(problem, uncertainties.samples, calc_second_order=False,
                            seed=sample_seed)
    return ([_rounded(params, names, row) for row in np.asarray(rows)]
            + [{} for _ in range(_defaults(uncertainties))])


def _defaults(uncertainties) -> int:
    return int(getattr(uncertainties, "defaults", 0) or 0) if uncertainties is not None else 0


def sampled_count(uncertainties, n_points: int) -> int:
    """Points that come from the design (the rest are `defaults` points at the defaults)."""
    return n_points - _defaults(uncertainties)
