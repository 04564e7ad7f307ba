"""Same seed -> identical results; common random numbers across arrangements; Mesa batch_run."""
from __future__ import annotations

import mesa
import numpy as np
import pandas as pd

from abm import ContractingModel


def test_same_seed_identical_frames():
    a = ContractingModel("icp_full", rng=11, population_scale=0.02).run(14)
    b = ContractingModel("icp_full", rng=11, population_scale=0.02).run(14)
    pd.testing.assert_frame_equal(a.datacollector.get_model_vars_dataframe(), b.datacollector.get_model_vars_dataframe())
    c = ContractingModel("icp_full", rng=12, population_scale=0.02).run(14)
    assert not a.datacollector.get_model_vars_dataframe().equals(c.datacollector.get_model_vars_dataframe())


def test_common_random_numbers_across_arrangements():
    frag = ContractingModel("fragmented", rng=5, population_scale=0.02)
    icp = ContractingModel("icp_full", rng=5, population_scale=0.02)
    for name in ("age", "band", "ltc", "frailty", "practice"):
        np.testing.assert_array_equal(getattr(frag.pop, name), getattr(icp.pop, name))
    d1, d2 = frag.care.demand(0), icp.care.demand(0)
    # month 0: nothing has diverged yet, so underlying need is identical draw by draw
    from abm.patients import dense
    n = frag.pop.n
    for k in ("emergency", "mental_health", "community", "social_care"):
        np.testing.assert_array_equal(dense(n, *d1[k]), dense(n, *d2[k]))
    np.testing.assert_array_equal(dense(n, *d1["gp_f2f"]) + dense(n, *d1["gp_digital"]),
                                  dense(n, *d2["gp_f2f"]) + dense(n, *d2["gp_digital"]))
    # later, population change stays paired too
    frag.run(13)
    icp.run(13)
    np.testing.assert_array_equal(frag.pop.age, icp.pop.age)


def test_mesa_batch_run():
    res = mesa.batch_run(ContractingModel, parameters={"arrangement": ["fragmented", "icp_partial"],
                                                       "population_scale": 0.01},
                         rng=[1, 2], max_steps=3, number_processes=1, data_collection_period=-1,
                         display_progress=False)
    df = pd.DataFrame(res)
    assert len(df) == 4
    assert set(df["arrangement"]) == {"fragmented", "icp_partial"}
    assert (df["Step"] == 3).all()
    assert df["cost_per_capita"].gt(0).all()


def test_arrangement_terms_of_other_arrangements_do_not_apply_but_typos_fail():
    import pytest
    from abm.errors import ConfigError
    m = ContractingModel("fragmented", rng=1, population_scale=0.01, arrangement__contract__contract_years=5)
    assert m.arr["not_applicable"] == ["contract.contract_years"]
    icp = ContractingModel("icp_full", rng=1, population_scale=0.01, arrangement__contract__contract_years=5)
    assert icp.network[icp.network.holder_contracts[0]].end == 60
    with pytest.raises(ConfigError, match="did you mean"):
        ContractingModel("icp_full", rng=1, population_scale=0.01, arrangement__contract__contract_yeras=5)
    with pytest.raises(ConfigError, match="unknown arrangement"):
        ContractingModel("icp", rng=1, population_scale=0.01)
