"""A tiny stand-in for ContractingModel with the same API, for fast experiment-layer tests.

Money is conserved by construction: the funder pays the allocation, the commissioner pays
providers, providers pay the care cost, so the parties' surpluses sum to minus system cost.
Under `fragmented` the commissioner pays tariff (it bears cost risk); under every other
arrangement it pays a fixed capitation to the lead (the lead bears it).

Shocks: `demand_surge`, `cost_inflation` and `efficiency_shortfall` raise the month's care cost
by their size from their month; `population_growth` raises the population (allocation, and the
capitation the lead is paid, follow it; so does cost) at year starts; `quality_fall` changes no
money. The random draws never depend on shocks (common random numbers).
"""
import os
import time

import networkx as nx
import numpy as np
import pandas as pd

_PAUSE = float(os.environ.get("ABM_FAKE_STEP_SECONDS", "0") or 0)
METRICS = ("cost_per_capita", "provider_failures", "continuity_of_care")


class _DC:
    def __init__(self, rows):
        self.rows = rows

    def get_model_vars_dataframe(self):
        return pd.DataFrame(self.rows)


def _size(economy) -> float:
    """1 for the default economy; else the economy file's population over 300,000, so each
    economy of a study gives its own numbers."""
    if economy in (None, "default"):
        return 1.0
    import yaml
    with open(economy) as fh:
        return yaml.safe_load(fh)["population"]["total"]["value"] / 300_000


class FakeModel:
    def __init__(self, arrangement="icp_full", economy=None, rng=None, population_scale=1.0,
                 shocks=None, **overrides):
        self.arrangement, self.scale = arrangement, population_scale
        self.rng = np.random.default_rng(rng)
        self.bonus = float(overrides.get("prevention__budget_share", 0.02))
        self.steps, self.cost, self.failures = 0, 0.0, 0
        self.shocks = list(shocks or [])
        self.pop, self.alloc = _size(economy), 0.0
        self.events = []
        self.org_by_id = {"trust": "trust", "icp": "icp"}
        self.rows = [self._row(0.0)]
        self.datacollector = _DC(self.rows)
        g = nx.MultiDiGraph()
        g.add_node("nhse", kind="funder")
        g.add_node("ccg", kind="commissioner")
        g.add_edge("nhse", "ccg", kind="allocation", value=1e6 * population_scale)
        self.contracts = g
        self.initial_contracts = g.copy()

    def _row(self, month_cost):
        return {"cost_per_capita": month_cost * 12 / (1000 * self.scale),
                "provider_failures": float(self.failures),
                "continuity_of_care": 0.5 + (0.1 if self.arrangement != "fragmented" else 0)}

    @property
    def holder(self):
        class _Org:
            org_id = "icp"
        return None if self.arrangement == "fragmented" else _Org()

    def party(self, org):
        return "lead" if org == "icp" else "providers"

    def _level(self, kinds, month):
        return sum(s["size"] for s in self.shocks if s["kind"] in kinds and month >= s["month"])

    def step(self):
        if _PAUSE:          # tests that stop a run part-way give it time to be stopped
            time.sleep(_PAUSE)
        self.steps += 1
        month = self.steps                                      # 1-based, as shock months
        if month % 12 == 1 and month > 1:
            self.pop *= 1 + self._level(("population_growth",), month)
        surge = self._level(("demand_surge", "cost_inflation", "efficiency_shortfall"), month)
        month_cost = (1000.0 * (1 + 0.2 * self.rng.standard_normal()) * (1 - self.bonus)
                      * self.pop * (1 + surge))
        self.cost += month_cost
        self.alloc += 1000.0 * self.pop
        failed = self.rng.random() < 0.1
        self.failures += int(failed)
        if failed:
            self.events.append({"month": self.steps - 1, "event": "failure (financial)",
                                "org": "icp" if self.arrangement != "fragmented" else "trust"})
        self.rows.append(self._row(month_cost))

    def system_cost_total(self):
        return self.cost

    def finance_records(self, include_partial=True):
        alloc = self.alloc
        lead_pay = self.alloc * 0.98
        out = [{"year": 1, "org_id": "nhse", "org_kind": "funder", "party": "funder",
                "income": 0.0, "cost": alloc, "surplus": -alloc, "reserves": 0.0}]
        if self.arrangement == "fragmented":
            out.append({"year": 1, "org_id": "ccg", "org_kind": "commissioner", "party": "commissioner",
                        "income": alloc, "cost": self.cost, "surplus": alloc - self.cost, "reserves": 0.0})
            out.append({"year": 1, "org_id": "trust", "org_kind": "acute", "party": "providers",
                        "income": self.cost, "cost": self.cost, "surplus": 0.0, "reserves": 0.0})
        else:
            out.append({"year": 1, "org_id": "ccg", "org_kind": "commissioner", "party": "commissioner",
                        "income": alloc, "cost": lead_pay, "surplus": alloc - lead_pay, "reserves": 0.0})
            out.append({"year": 1, "org_id": "icp", "org_kind": "prime_contractor", "party": "lead",
                        "income": lead_pay, "cost": self.cost, "surplus": lead_pay - self.cost,
                        "reserves": 0.0})
        return out
