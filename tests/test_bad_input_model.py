"""Bad input to the model fails loudly with one clear line instead of running on (issue 17, model side)."""
from __future__ import annotations

import pytest
import yaml

from abm import ContractingModel
from abm.errors import ConfigError
from abm.params import default_economy_path, load_economy, read_yaml


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_overrides_are_refused(value):
    with pytest.raises(ConfigError, match="finite"):
        ContractingModel("fragmented", rng=1, population_scale=0.01, prevention__budget_share=value)


def test_negative_money_is_refused():
    with pytest.raises(ConfigError, match="unit_cost.emergency"):
        ContractingModel("fragmented", rng=1, population_scale=0.01, costs__unit_cost={"emergency": -1.0})


def test_a_scale_that_simulates_almost_no_one_is_refused():
    with pytest.raises(ConfigError, match="simulates only"):
        ContractingModel("fragmented", rng=1, population_scale=1e-9)


def test_duplicate_yaml_keys_are_refused(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("name: x\nmonths: 12\nmonths: 24\n")
    with pytest.raises(ConfigError, match="duplicate key 'months'"):
        read_yaml(f)
    from abm.experiment import read_yaml as read_experiment
    with pytest.raises(ConfigError, match="duplicate key"):
        read_experiment(f)


def test_an_economy_total_that_disagrees_with_its_lists_is_refused(tmp_path):
    data = yaml.safe_load(default_economy_path().read_text())
    data["population"]["total"]["value"] = 10 ** 9
    f = tmp_path / "eco.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="disagrees with the practices' lists"):
        load_economy(f)
    # an explicit override of the total rescales the lists instead (benchmarks at other sizes)
    eco = load_economy(None, {"population.total": 637000})
    assert sum(p["list_size"] for p in eco["practices"]["list"]) == pytest.approx(637000, rel=0.001)


@pytest.mark.parametrize("shock,match", [
    ({"kind": "demand_surge", "month": 1, "size": float("nan")}, "shock size"),
    ({"kind": "demand_surge", "month": 1, "size": 1e6}, "shock size"),
    ({"kind": "quality_fall", "month": 1, "size": 2.0}, "quality fall"),
])
def test_validate_refuses_the_shocks_the_model_refuses(tmp_path, shock, match):
    from abm.experiment import load_experiment
    cfg = {"name": "x", "economy": "default", "arrangements": ["fragmented"], "replications": 1, "seed": 1,
           "months": 12, "shocks": [shock]}
    with pytest.raises(ConfigError, match=match):
        load_experiment(cfg)


def test_absurd_replications_are_refused_before_running():
    from abm.experiment import load_experiment
    cfg = {"name": "x", "economy": "default", "arrangements": ["fragmented"], "replications": 10 ** 9,
           "seed": 1, "months": 12}
    with pytest.raises(ConfigError, match="runs"):
        load_experiment(cfg)
