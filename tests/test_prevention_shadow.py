"""Prevention acts relative to the status quo's public-health line, whose effect the observed admission
rates already contain (abm.prevention; docs/ODD.md, "Prevention against the status quo's line").

Without that, the status quo's own line built up from zero stock and lowered its admissions year by
year, so the population budgets, which grow with cost tables that expect England's rise, gained on
their own."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm import ContractingModel
from abm.prevention import Prevention

NO_FAIL = {"failure__threshold": -100.0, "failure__hand_back_loss": 1.0}


def frame(m) -> pd.DataFrame:
    return m.datacollector.get_model_vars_dataframe()


def test_skipping_two_equal_lines_changes_nothing(monkeypatch):
    """The status quo at the defaults runs the observed line itself; the model skips both lines then. Run
    them both and every recorded number is the same, bit for bit, while both lines really did run."""
    fast = ContractingModel("fragmented", rng=3, population_scale=0.02).run(30)
    assert fast.prevention.shadow_same and len(fast.pop.prev_live) == 0
    monkeypatch.setattr(Prevention, "SHORTCUT", False)
    full = ContractingModel("fragmented", rng=3, population_scale=0.02).run(30)
    assert not full.prevention.shadow_same
    pop = full.pop
    assert (pop.prev_stock > 0).sum() > 0.05 * pop.size            # both lines invested in people ...
    np.testing.assert_array_equal(pop.prev_stock, pop.shadow_stock)   # ... the same people, the same amounts
    assert not pop.prevention_effect().any()                          # and net to nothing
    pd.testing.assert_frame_equal(frame(fast), frame(full), check_exact=True)


@pytest.mark.parametrize("share, sign", [(0.0, -1), (0.006, +1)])
def test_more_or_less_than_the_observed_line_moves_risk_that_way(share, sign):
    """Stopping the status quo's line loses the effect the observed rates contain (risk rises for the
    people it reached); spending more than it lowers risk. Paired runs (common random numbers)."""
    adm = {}
    for s in (0.002, share):
        ms = [ContractingModel("fragmented", rng=seed, population_scale=0.04, prevention__public_health_share=s,
                               **NO_FAIL).run(60) for seed in (1, 2)]
        adm[s] = np.mean([frame(m)["emergency_admissions_per_1000"].iloc[-24:].mean() for m in ms])
        net = ms[0].pop.prevention_effect()
        if s == share:                                   # one direction only: the same people, one line more
            assert (sign * net).max() > 0 and (sign * net).min() >= 0
        else:
            assert not net.any()
    change = adm[share] / adm[0.002] - 1                 # admissions move against the net effect
    assert -sign * change > 0.005


def test_the_status_quo_line_no_longer_lowers_the_status_quos_own_admissions():
    """The bias, measured: without the shadow (observed_share 0), the status quo's line builds up from zero
    and its admissions grow less a year than with no prevention at all; with the shadow they grow as
    with none (the line's effect is in the observed rates)."""
    def growth(**kw):
        g = []
        for seed in (1, 2):
            df = frame(ContractingModel("fragmented", rng=seed, population_scale=0.05, **kw, **NO_FAIL).run(120))
            y = df["emergency_admissions_per_1000"].iloc[1:].groupby(np.arange(120) // 12).mean().to_numpy()
            g.append(np.polyfit(np.arange(10), np.log(y), 1)[0])
        return float(np.mean(g))
    none = growth(prevention__public_health_share=0.0, prevention__observed_share=0.0)
    shadow = growth()
    unshadowed = growth(prevention__observed_share=0.0)
    assert unshadowed < none - 0.001                      # the old bias: about 0.2 points a year or more
    assert abs(shadow - none) < 0.25 * (none - unshadowed)


def test_a_holder_that_stops_the_line_is_measured_against_it():
    """An ICP holder that invests nothing (budget_share 0) runs no line: the people the status quo's line
    would reach carry a negative net effect, and their emergency multiplier is above one."""
    m = ContractingModel("icp_full", rng=1, population_scale=0.02, prevention__budget_share=0.0, **NO_FAIL).run(36)
    assert m.results.cum["prevention"] == 0.0 and not m.prevention.shadow_same
    reached = m.prevention.shadow["reached"]
    assert len(reached) > 0
    net = m.pop.prevention_effect()
    assert (net[reached] < 0).mean() > 0.9 and net.max() == 0.0
    eff_max = m.p["prevention"]["effect_max"]
    assert net.min() >= -eff_max / (1 - eff_max)          # within the screening bound's allowance
    alone = ContractingModel("icp_full", rng=1, population_scale=0.02, prevention__budget_share=0.0,
                             prevention__observed_share=0.0, **NO_FAIL).run(36)
    assert not alone.pop.prevention_effect().any()         # no shadow, no holder line: nothing to net


def test_effect_max_must_leave_some_risk():
    """The net effect divides by 1 - the shadow's effect: an effect_max of 1 would remove all risk."""
    from abm.errors import ConfigError
    with pytest.raises(ConfigError, match="effect_max"):
        ContractingModel("fragmented", rng=1, population_scale=0.01, prevention__effect_max=1.0)
