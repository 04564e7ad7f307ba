"""Pattern-oriented validation (issue 8). The other patterns live beside the mechanism they test:
contract-count collapse (test_network.py), capitation vs tariff incidence and population growth
(test_money.py), continuity and hand-offs (test_metrics.py), the right to return (test_behaviour.py)."""
import numpy as np

from abm import ContractingModel


def test_alliance_spreads_losses_more_evenly_than_a_prime_contract():
    """Alliance risk sharing spreads losses across members more evenly than a prime contract, where
    the integrator carries them (seeds/004_a2d2e77c5fc17e8f.txt: alliance partners share risk and reward;
    prime contractor manages providers through subcontracts). Measured by loss_gini after a demand surge."""
    def gini(arr):
        return np.mean([ContractingModel(arr, rng=s, population_scale=0.03, failure__threshold=-100,
                                         shocks=[{"kind": "demand_surge", "month": 1, "size": 0.08}]).run(24)
                        .metrics["loss_gini"] for s in (1, 2, 3)])
    alliance = gini("alliance")
    assert alliance < gini("prime_contractor") - 0.1
    assert alliance < gini("prime_provider")
