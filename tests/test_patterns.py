"""Pattern-oriented validation (issue 8). The other patterns live beside the mechanism they test:
contract-count collapse (test_network.py), capitation vs tariff incidence and population growth
(test_money.py), continuity and hand-offs (test_metrics.py), the right to return (test_behaviour.py)."""
import numpy as np

from abm import ContractingModel


def test_alliance_spreads_losses_more_evenly_than_a_prime_contract():
    """Alliance risk sharing spreads losses across members more evenly than a prime contract, where
    the integrator carries them (NHS England IPC programme, About contracting for integrated care: alliance partners share risk and reward;
    prime contractor manages providers through subcontracts). Measured by loss_gini after a demand surge."""
    def gini(arr):
        return np.mean([ContractingModel(arr, rng=s, population_scale=0.03, failure__threshold=-100,
                                         shocks=[{"kind": "demand_surge", "month": 1, "size": 0.08}]).run(24)
                        .metrics["loss_gini"] for s in (1, 2, 3)])
    alliance = gini("alliance")
    assert alliance < gini("prime_contractor") - 0.1
    assert alliance < gini("prime_provider")


def test_ucp_like_llp_prime_contractor_collapses_within_its_term():
    """Cambridgeshire & Peterborough UCP (NAO investigation; PAC 2016-17): an LLP prime
    contractor on a 5-year contract bid below the maximum (£726m of £752m, 0.965), unable to recover VAT
    on contracted-out services, collapsed inside its term. An NHS prime provider on the same terms keeps
    VAT recovery and survives."""
    for seed in (1, 2):
        llp = ContractingModel("prime_contractor", rng=seed, population_scale=0.03,
                               arrangement__contract__value_factor=0.965).run(60)
        nhs = ContractingModel("prime_provider", rng=seed, population_scale=0.03,
                               arrangement__contract__value_factor=0.965).run(60)
        failed = [e["month"] for e in llp.events if e["org"] == "prime" and e["event"].startswith("failure")]
        assert failed and failed[0] < 60
        # the LLP loses VAT recovery on what it subcontracts: 1 / nhs_residual_share times the NHS rate
        assert llp.finance.vat_rate(llp.org_by_id["prime"]) > 20 * nhs.finance.vat_rate(nhs.org_by_id["dgft"]) > 0
        assert llp.results.cum["vat"] > 10 * nhs.results.cum["vat"] > 0
        assert not nhs.org_by_id["dgft"].failed
        # after the collapse the commissioner contracts the providers directly again
        assert llp.metrics["commissioner_contracts"] > ContractingModel(
            "prime_contractor", rng=seed, population_scale=0.03).metrics["commissioner_contracts"]
