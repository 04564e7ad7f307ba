"""The assumption register: every parameter whose source is an assumption carries a plausible
range (configs/parameters.yaml `range`/`range_scale` + `range_why`) that holds its default and
lies within its bounds."""
from __future__ import annotations

import copy

import pytest

from abm.params import (apply_parameter_overrides, assumption_register, default_parameters,
                        flatten, is_assumption, register_problems, scaled_value, values)


def test_register_is_sound():
    assert register_problems() == []


def test_every_assumption_has_a_range_and_a_reason():
    leaves = flatten(default_parameters())
    assumptions = [n for n, leaf in leaves.items() if is_assumption(leaf)]
    assert len(assumptions) >= 61
    for name in assumptions:
        leaf = leaves[name]
        assert ("range" in leaf) != ("range_scale" in leaf), name
        assert str(leaf.get("range_why", "")).strip(), name
    rows = {r["name"]: r for r in assumption_register()}
    assert set(assumptions) <= set(rows)


def _tree_with(name: str, **changes) -> dict:
    tree = default_parameters()
    group, key = name.split(".")
    tree[group][key].update(changes)
    for k, v in list(changes.items()):
        if v is None:
            del tree[group][key][k]
    return tree


def test_missing_range_is_reported():
    tree = _tree_with("health.handoff_loss", range=None)
    assert any("health.handoff_loss: assumption without a range" in p for p in register_problems(tree))


def test_default_outside_range_is_reported():
    tree = _tree_with("health.handoff_loss", range=[0.0, 0.003])
    assert any("outside its range" in p for p in register_problems(tree))


def test_range_outside_bounds_is_reported():
    # a share (0-1) cannot range above 1; frailty_sd has max 3
    assert any("outside the bounds" in p
               for p in register_problems(_tree_with("trust.initial", range=[0.4, 1.2])))
    assert any("outside the bounds" in p
               for p in register_problems(_tree_with("demand.frailty_sd", range=[0.4, 3.5])))


@pytest.mark.parametrize("bad", [[0.5], [0.6, 0.5], ["a", 1], [0.1, float("nan")]])
def test_malformed_range_is_reported(bad):
    assert any("range must be" in p
               for p in register_problems(_tree_with("trust.initial", range=bad)))


def test_range_scale_needs_a_mapping_and_contains_one():
    assert any("range_scale is for mappings" in p for p in register_problems(
        _tree_with("trust.initial", range=None, range_scale=[0.7, 1.3])))
    assert any("contain 1" in p for p in register_problems(
        _tree_with("costs.fixed_cost_share", range_scale=[1.1, 1.3])))


def test_reason_is_required():
    assert any("range_why" in p for p in register_problems(_tree_with("trust.initial", range_why=" ")))


def test_loader_ignores_the_register_keys():
    tree = default_parameters()
    plain = values(tree)
    assert plain["health"]["handoff_loss"] == 0.004          # a plain value, no range attached
    patched = apply_parameter_overrides(tree, {"health.handoff_loss": 0.002})
    assert flatten(patched)["health.handoff_loss"]["range"] == [0.0, 0.004]
    assert values(patched)["health"]["handoff_loss"] == 0.002


def test_scaled_value_caps_shares_at_one():
    leaf = copy.deepcopy(flatten(default_parameters())["costs.fixed_cost_share"])
    up = scaled_value(leaf, 1.3)
    assert up["prime_contractor"] == 1.0 and up["acute"] == pytest.approx(0.55 * 1.3)
