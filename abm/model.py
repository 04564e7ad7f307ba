"""ContractingModel: one health economy under one contracting arrangement, one step per month.

The order of a month (also in docs/ODD.md):
  1. Year start (first month of a year): population change (after year 1), rates, contract values from
     population, contract ends and re-procurement, GP break points, prevention budget decisions.
  2. Population: shocks that apply now; prevention investment matures.
  3. Demand: each person's needs this month (same uniforms under every arrangement).
  4. Care: episodes routed to providers through the contract network and patient choice; capacity.
  5. Transitions: referrals and discharges between organisations, integrated or not.
  6. Costs: delivery, transaction, running costs and VAT leakage.
  7. Payments: each active contract pays by its payment kind; risk sharing (pass-through, alliance pool)
     is trued up on year-to-date figures; failures are detected.
  8. Year end (last month of a year): risk corridors, finance records, trust, quality, oversight.
  9. Metrics: every INTERFACE metric, collected by the DataCollector.
"""
from __future__ import annotations

from collections import defaultdict

import mesa
import numpy as np

from . import behaviour, care, counter_rng, finance, metrics
from .agents import GPPractice, Organisation, agent_class
from .contracts import COORDINATING, build_network, to_graph
from .errors import ConfigError
from .money import Ledger
from .params import SERVICES, SHOCK_KINDS, resolve
from .patients import Population

STREAMS = {"population": 1, "demand": 2, "choice": 3, "behaviour": 4, "shocks": 5}
PARTY_OF_ROLE = {"funder": "funder", "commissioner": "commissioner", "lead": "lead", "practice": "gp_practices"}


def _seed_from(rng) -> int:
    if rng is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(rng, (int, np.integer)):
        return int(rng)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**32))
    raise ConfigError("rng must be an integer seed or a numpy Generator", field="rng", value=rng)


class ContractingModel(mesa.Model):
    """One economy, one arrangement. `rng` is the seed; the same seed gives the same people and the same
    underlying demand draws under every arrangement (common random numbers)."""

    def __init__(self, arrangement: str = "icp_full", economy=None, rng=None, population_scale: float = 1.0,
                 shocks: list[dict] | None = None, **overrides):
        seed = _seed_from(rng)
        super().__init__(rng=seed)
        if isinstance(population_scale, bool) or not isinstance(population_scale, (int, float)) \
                or not 0 < population_scale <= 1:
            raise ConfigError("population_scale must be in (0, 1]", field="population_scale", value=population_scale)
        self.seed = seed
        self.arrangement = arrangement
        self.scale = float(population_scale)
        self.config = resolve(arrangement, economy, overrides)
        self.p = self.config["params"]
        self.eco = self.config["economy"]
        self.arr = self.config["arrangement"]
        self.shocks = self._check_shocks(shocks or [])
        self.month = 0
        self.year_records: list[dict] = []
        self.cum = defaultdict(float)           # cumulative quantities for metrics (vat, prevention, ...)
        self.window12 = defaultdict(lambda: np.zeros(12))  # rolling 12-month sums for metrics
        self.failures = 0
        self._keys = (None, None)
        self.events: list[dict] = []            # failures, terminations, returns (for the viz and reports)
        self._setup()
        self.datacollector = mesa.DataCollector(model_reporters=metrics.reporters())
        self.metrics = metrics.compute(self)
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ set-up
    def stream(self, name: str, *keys: int) -> np.random.Generator:
        """A named random stream; keyed by month or year so one arrangement's extra draws never shift another's."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, STREAMS[name], *keys]))

    def counter_key(self, name: str, month: int, purpose: int) -> np.uint32:
        """The key of counter-based per-person draws (abm.counter_rng) for a stream, month and purpose
        (one SeedSequence per stream and month gives the keys of all its purposes)."""
        cached = self._keys
        if cached[0] != (name, month):
            cached = self._keys = ((name, month), counter_rng.keys(self.seed, STREAMS[name], month))
        return cached[1][purpose]

    def _check_shocks(self, shocks: list[dict]) -> list[dict]:
        out = []
        for i, s in enumerate(shocks):
            if not isinstance(s, dict) or s.get("kind") not in SHOCK_KINDS:
                raise ConfigError("unknown shock kind", field=f"shocks[{i}].kind",
                                  value=s.get("kind") if isinstance(s, dict) else s, allowed=", ".join(SHOCK_KINDS))
            month = s.get("month", 1)
            size = s.get("size", 0.0)
            if isinstance(month, bool) or not isinstance(month, int) or month < 1:
                raise ConfigError("shock month must be a whole month >= 1", field=f"shocks[{i}].month", value=month)
            if isinstance(size, bool) or not isinstance(size, (int, float)) or not -1 < size <= 5:
                raise ConfigError("shock size must be a relative change above -1", field=f"shocks[{i}].size", value=size)
            dur = s.get("duration")
            if dur is not None and (not isinstance(dur, int) or dur < 1):
                raise ConfigError("shock duration must be a whole number of months >= 1", field=f"shocks[{i}].duration", value=dur)
            out.append({"kind": s["kind"], "month": month, "size": float(size), "duration": dur,
                        "service": s.get("service")})
        return out

    def shock_level(self, kind: str, t: int) -> float:
        """Sum of sizes of shocks of a kind active in month index t (0-based; shock months are 1-based)."""
        total = 0.0
        for s in self.shocks:
            if s["kind"] == kind and t + 1 >= s["month"] and (s["duration"] is None or t + 1 < s["month"] + s["duration"]):
                total += s["size"]
        return total

    def _setup(self) -> None:
        p, eco = self.p, self.eco
        # organisations as agents, in a fixed order; the holder may be a new organisation
        self.orgs: list[Organisation] = []
        self.org_by_id: dict[str, Organisation] = {}
        specs = list(eco["organisations"])
        if self.arr["holder"] and self.arr["holder"]["new"]:
            h = self.arr["holder"]["new"]
            specs.append({**h, "cost_ratio": 1.0, "quality": 0.7, "vat_recovers": None})
        for o in specs:
            self._add_org(o["id"], o["kind"], o["name"], o["nhs_body"], o.get("cost_ratio", 1.0),
                          o.get("quality", 0.7), o.get("vat_recovers"))
        self.practice_ids = [pr["id"] for pr in eco["practices"]["list"]]
        for pr in eco["practices"]["list"]:
            self._add_org(pr["id"], "gp_practice", pr["id"], True, 1.0, 0.7, True, list_size=pr["list_size"],
                          contract=pr["contract"])
        self.funder = next(o for o in self.orgs if o.kind == "funder")
        self.ccg = next(o for o in self.orgs if o.kind == "commissioner")
        self.la = next((o for o in self.orgs if o.kind == "local_authority"), None)
        self.practices: list[GPPractice] = [self.org_by_id[i] for i in self.practice_ids]
        self.practice_idx = np.array([pr.idx for pr in self.practices])
        # service -> providers (org indices) and starting shares; "practice" = the registered practice
        self.service_providers: dict[str, dict[str, float]] = {
            s: dict(v) for s, v in eco["service_providers"]["value"].items()}
        # contact slots: 0 = own practice, then one per non-practice organisation (+ spare for successors)
        self.slot_of = np.zeros(len(self.orgs) + 16, dtype=np.int16)
        nonprac = [o for o in self.orgs if o.kind != "gp_practice"]
        for k, o in enumerate(nonprac, start=1):
            self.slot_of[o.idx] = k
        self.pop = Population(eco, p, self.scale, self.stream("population", 0), n_slots=len(nonprac) + 1)
        self.pop.compute_rates()
        self.pop.health[:] = self.pop.ref_health
        self.practice_list = np.bincount(self.pop.practice, minlength=len(self.practices)).astype(float)
        for pr, n in zip(self.practices, self.practice_list):
            pr.list_size = float(n)
        # baseline expectations: current spend, costs and capacity
        finance.set_baseline(self)
        # GP participation decisions, then the contract network
        behaviour.choose_participation(self)
        self._build_network()
        self.ledger = Ledger(len(self.orgs), np.zeros(len(self.orgs)), self.funder.idx)
        finance.open_reserves(self)
        finance.set_allocations(self)
        care.init_state(self)
        self.year_care = np.zeros(len(self.orgs))
        self.prev_plan = {"payers": [], "reached": np.empty(0, np.int64), "budget": 0.0}
        self.alliance_agreed = True
        self.last_pool = 0.0
        finance.start_settlement_year(self)
        self.initial_contracts = self.contracts.copy()
        for pr in self.practices:
            pr.income_before = self.p["funding"]["gp_capitation"] * pr.list_size

    def _add_org(self, oid, kind, name, nhs_body, cost_ratio, quality, vat_recovers, **kw) -> Organisation:
        cls = agent_class(kind)
        agent = cls(self, oid, kind, name, nhs_body, len(self.orgs), cost_ratio=cost_ratio, quality=quality,
                    vat_recovers=vat_recovers, **kw)
        self.orgs.append(agent)
        self.org_by_id[oid] = agent
        return agent

    def _build_network(self) -> None:
        modes = {pr.org_id: pr.mode for pr in self.practices}
        salaried = {pr.org_id: pr.salaried for pr in self.practices}
        lists = {pr.org_id: pr.list_size for pr in self.practices}
        self.net = build_network(self.eco, self.arr, self.p, self.spend, modes, salaried, float(self.pop.n),
                                 lists, self.scale)
        self.holder = self.org_by_id[self.net.holder] if self.net.holder else None
        self.contracts = to_graph(self.net.contracts, self.node_attrs())
        self.refresh_structure()

    def node_attrs(self) -> dict[str, dict]:
        roles = self.net.roles
        return {o.org_id: {"kind": o.kind, "role": roles.get(o.org_id, "provider"), "nhs_body": o.nhs_body,
                           "label": o.name, "budget": float(o.expected_income), "failed": o.failed}
                for o in self.orgs}

    def party(self, org: Organisation) -> str:
        role = self.net.roles.get(org.org_id, "provider")
        if org.kind == "local_authority":
            return "commissioner"
        return PARTY_OF_ROLE.get(role, "providers")

    # ------------------------------------------------------------------ structure caches
    def refresh_structure(self) -> None:
        """Recompute lookups that depend on the network (after any contract change)."""
        self.structure_version = getattr(self, "structure_version", 0) + 1
        care.refresh_routing(self)
        behaviour.refresh_coverage(self)

    def sync_edge(self, cid: str) -> None:
        c = self.net.contracts[cid]
        if self.contracts.has_edge(c.payer, c.payee, key=cid):
            self.contracts.edges[c.payer, c.payee, cid].update(c.edge_attrs())
        else:
            self.contracts.add_edge(c.payer, c.payee, key=cid, **c.edge_attrs())

    def record(self, name: str, t: int, value: float) -> None:
        """Store this month's value of a rolling 12-month quantity."""
        self.window12[name][t % 12] = value

    def record_add(self, name: str, t: int, value: float) -> None:
        self.window12[name][t % 12] += value

    def active_contracts(self):
        return (c for c in self.net.contracts.values() if c.status == "active")

    # ------------------------------------------------------------------ the month
    def step(self) -> None:
        t = self.month
        self.ledger.start_month()
        for name in ("transaction", "cost"):
            self.window12[name][t % 12] = 0.0
        if t % 12 == 0:
            self._year_start(t)
        self.pop.mature_prevention()
        counts = care.demand(self, t)
        care.deliver(self, t, counts)
        finance.costs(self, t)
        finance.payments(self, t)
        finance.settle_to_date(self, t)
        behaviour.check_failures(self, t)
        if t % 12 == 11:
            self._year_end(t)
        self.month += 1
        self.metrics = metrics.compute(self)
        self.datacollector.collect(self)

    def _year_start(self, t: int) -> None:
        year = t // 12
        if year > 0:
            growth = self.p["population"]["growth_rate"] + self.shock_level("population_growth", t)
            n_before = self.pop.n
            self.pop.year_change(self.stream("population", 1000 + year), growth, self.shock_level("ageing", t))
            self.pop.compute_rates()
            fresh = np.flatnonzero(self.pop.fresh)
            self.pop.health[fresh] = self.pop.ref_health[fresh]
            self.pop.health[n_before:] = self.pop.ref_health[n_before:]
            care.resize(self)
        self.practice_list = np.bincount(self.pop.practice, minlength=len(self.practices)).astype(float)
        for pr, n in zip(self.practices, self.practice_list):
            pr.list_size = float(n)
        if t == 0:
            finance.initial_procurement(self)
        behaviour.break_points(self, t)
        finance.renew_contracts(self, t)
        finance.update_contract_values(self, t)
        finance.start_settlement_year(self)
        behaviour.decide_prevention(self, t)

    def _year_end(self, t: int) -> None:
        finance.settle_year(self, t)
        inc, cost = self.ledger.close_year()
        year = t // 12 + 1
        for o in self.orgs:
            o.last_income = float(inc[o.idx])
            o.last_surplus = float(inc[o.idx] - cost[o.idx])
            self.year_records.append({
                "year": year, "org_id": o.org_id, "org_kind": o.kind, "party": self.party(o),
                "income": float(inc[o.idx]), "cost": float(cost[o.idx]), "surplus": float(inc[o.idx] - cost[o.idx]),
                "reserves": o.reserves})
        behaviour.year_end(self, t)

    # ------------------------------------------------------------------ outputs
    def finance_records(self, include_partial: bool = True) -> list[dict]:
        """One row per organisation per year (and the current part-year when asked)."""
        rows = list(self.year_records)
        if include_partial and self.month % 12 != 0:
            year = self.month // 12 + 1
            inc, cost = self.ledger.year_income, self.ledger.year_cost
            for o in self.orgs:
                rows.append({"year": year, "org_id": o.org_id, "org_kind": o.kind, "party": self.party(o),
                             "income": float(inc[o.idx]), "cost": float(cost[o.idx]),
                             "surplus": float(inc[o.idx] - cost[o.idx]), "reserves": o.reserves})
        return rows

    def system_cost_total(self) -> float:
        return self.ledger.system_cost()

    def coordinating_contracts(self) -> int:
        return sum(1 for c in self.active_contracts() if c.kind in COORDINATING)

    def run(self, months: int) -> "ContractingModel":
        for _ in range(months):
            self.step()
        return self


__all__ = ["ContractingModel", "SERVICES"]
