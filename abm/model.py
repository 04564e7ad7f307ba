"""ContractingModel: one health economy under one contracting arrangement, one step per month.

The model holds its parts, each owning its state (as Starsim modules do):

- `pop` (abm.patients.Population): every registered person as arrays; ageing, deaths, registrations,
  rates, health, prevention effect, the 12-month contact window.
- `network` (abm.contracts.ContractNetwork): the contract network; `model.contracts` is its graph.
- `care` (abm.care.Care): routing, capacity and waiting, activity, transitions, coordination, continuity.
- `finance` (abm.finance.Finance): the ledger, costs, payments, allocations and settlement.
- `prevention` (abm.prevention.Prevention): the yearly prevention plan and its monthly spend.
- `results` (abm.metrics.Results): rolling and cumulative records, events, finance records, metrics.
- the organisations: Mesa agents (abm.agents) that make their own decisions.

A month is the ordered list `ContractingModel.PHASES` (docs/ODD.md lists the same names, checked by a
test). Phases marked yearly do nothing in other months.
"""
from __future__ import annotations

import mesa
import numpy as np

from . import counter_rng, metrics
from .agents import GPPractice, Organisation, agent_class
from .care import Care
from .contracts import ContractNetwork, build_network
from .errors import ConfigError
from .finance import Finance
from .kinds import COORDINATING
from .params import SERVICES, SHOCK_KINDS, resolve
from .patients import Population
from .prevention import Prevention

MIN_PEOPLE = 100     # fewer simulated people cannot stand for a population
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


# ---------------------------------------------------------------------- the phases of a month
def _year_start(m) -> bool:
    return m.month % 12 == 0


def _year_end(m) -> bool:
    return m.month % 12 == 11


def open_month(m) -> None:
    """Monthly: the month's payment flows and rolling cost records start at zero."""
    m.finance.ledger.start_month()
    m.results.open_month(m.month)


def shocks(m) -> None:
    """Monthly: a quality fall starting this month lowers every provider's quality (it then drifts back)."""
    for s in m.shocks:
        if s["kind"] == "quality_fall" and s["month"] == m.month + 1:
            for o in m.orgs:
                if o.side == "provider" and not o.failed:
                    o.quality = max(0.0, o.quality - s["size"])


def population_change(m) -> None:
    """Yearly from year 2: ageing, condition onset, deaths and newborn registrations, practice moves,
    growth (and shocks to growth and age mix); yearly rates from the new population."""
    t = m.month
    if not _year_start(m) or t == 0:
        return
    pop = m.pop
    growth = m.p["population"]["growth_rate"] + m.shock_level("population_growth", t)
    n_before = pop.n
    pop.year_change(m.stream("population", 1000 + t // 12), growth, m.shock_level("ageing", t))
    pop.compute_rates()
    fresh = np.flatnonzero(pop.fresh)
    pop.health[fresh] = pop.ref_health[fresh]
    pop.health[n_before:] = pop.ref_health[n_before:]
    m.care.population_grew()


def registrations(m) -> None:
    """Yearly (first month): practices' list sizes from this year's registrations."""
    if _year_start(m):
        m.update_list_sizes()


def activity_plan(m) -> None:
    """Yearly (first month): planned activity from last year's registered population (capacity, fixed
    costs and block values follow it a year late); weighted-capitation cost tables re-based."""
    m.finance.plan_activity(m.month)


def initial_procurement(m) -> None:
    """Month 1 only: a new holder contract and the alliance agreement are procured."""
    m.finance.initial_procurement(m.month)


def gp_break_points(m) -> None:
    """Yearly (first month): each fully integrated practice weighs the right to return (notice, then return)."""
    if _year_start(m):
        for pr in m.practices:
            pr.consider_return(m.month)


def contract_renewal(m) -> None:
    """Yearly (first month): contracts at the end of their term are renewed (holder contracts re-procured)."""
    if _year_start(m):
        m.finance.renew_contracts(m.month)


def contract_values(m) -> None:
    """Yearly (first month): the real-terms uplift; allocations and population payments follow population, capitation
    follows lists, salaried practices are paid their cost."""
    if _year_start(m):
        m.finance.update_contract_values(m.month)


def capacity(m) -> None:
    """Yearly (first month): providers' capacity from planned activity and headroom."""
    if _year_start(m):
        m.care.plan_capacity(m.finance.exp_units)


def settlement_year_start(m) -> None:
    """Yearly (first month): year-to-date risk-sharing positions start at zero."""
    if _year_start(m):
        m.finance.start_settlement_year()


def prevention_decision(m) -> None:
    """Yearly (first month): the decider sets this year's prevention budget and whom it reaches; the status
    quo's public-health line is planned beside it as the shadow prevention acts against."""
    m.prevention.decide(m.month)


def prevention_maturing(m) -> None:
    """Monthly: prevention investment (and the shadow's) becomes effective with a lag and fades."""
    m.pop.mature_prevention()


def demand(m) -> None:
    """Monthly: each person's needs by service, from draws every arrangement shares."""
    m.care.demand(m.month)


def care_delivery(m) -> None:
    """Monthly: episodes routed through the contract network and patient choice; capacity and waits;
    transitions between organisations (coordinated or not); contacts and health."""
    m.care.deliver(m.month)


def delivery_costs(m) -> None:
    """Monthly: providers' and practices' delivery costs, interim costs of failed providers."""
    m.finance.delivery_costs(m.month)


def prevention_spend(m) -> None:
    """Monthly: a twelfth of the prevention budget, paid by its decider."""
    m.prevention.spend(m.month)


def transaction_costs(m) -> None:
    """Monthly: contract management, governance, subcontract management, commissioner running costs."""
    m.finance.transaction_costs(m.month)


def payments(m) -> None:
    """Monthly: each active contract pays by its payment kind; billing costs; VAT leakage."""
    m.finance.payments(m.month)


def risk_sharing(m) -> None:
    """Monthly: pass-through and the alliance pool trued up on year-to-date figures."""
    m.finance.settle_to_date(m.month)


def viability(m) -> None:
    """Monthly: each organisation checks its reserves; one that fails hands its contracts back."""
    for o in list(m.orgs):
        o.check_viability(m.month)


def outcome_payments(m) -> None:
    """Yearly (last month): the outcome-linked share of holder contracts, paid on measured achievement."""
    if _year_end(m):
        m.finance.pay_outcomes(m.month)


def year_end_settlement(m) -> None:
    """Yearly (last month): risk corridors and gain/loss shares on holder contracts."""
    if _year_end(m):
        m.finance.settle_year(m.month)


def close_accounts(m) -> None:
    """Yearly (last month): the year's income and cost per organisation, into the finance records."""
    if not _year_end(m):
        return
    inc, cost = m.finance.close_year()
    for o in m.orgs:
        o.last_income = float(inc[o.idx])
        o.last_surplus = float(inc[o.idx] - cost[o.idx])
    m.results.close_year(m.month, inc, cost)


def financial_oversight(m) -> None:
    """Yearly (last month): NHS trusts repay cash support from surpluses and are placed in an oversight
    segment; the commissioner ends a holder contract kept in intensive support too long."""
    if not _year_end(m):
        return
    for o in m.orgs:
        o.financial_year_end(m.month)
    m.finance.new_support_year()
    m.ccg.review_holder_finances(m.month)


def trust(m) -> None:
    """Yearly (last month): relational trust on coordinating contracts learns from the payee's result
    (asymmetric update; Kim 2009); an alliance's joint working develops with trust and governance (or
    erodes); coordination follows."""
    if not _year_end(m):
        return

    def outcome(oid: str) -> float:
        o = m.org_by_id[oid]
        return 0.5 + 0.5 * np.tanh(o.last_surplus / max(abs(o.last_income), 1.0) / 0.02)
    shared = 0.5 + 0.5 * np.tanh(-m.finance.pool_rate / 0.02)     # the alliance pool's underspend is success
    m.network.learn_trust(outcome, m.p["trust"]["rho"], shared)
    m.network.develop_alliance(m.p["trust"], m.p["transaction"]["alliance_governance_per_member"] / 150000.0)
    m.care.refresh_coordination()


def provider_review(m) -> None:
    """Yearly (last month): organisations in deficit cut unit costs; quality drifts with finances."""
    if not _year_end(m):
        return
    changed = False
    for o in m.orgs:
        changed |= o.year_review()
    if changed:
        m.finance.refresh_var_unit()


def quality_review(m) -> None:
    """Yearly (last month): the commissioner ends contracts after sustained quality failure (re-procuring
    the service from a new provider) and withdraws subcontract permission below the quality bar."""
    if _year_end(m):
        m.ccg.review_quality(m.month)
        m.ccg.review_permissions(m.month)


def continuity(m) -> None:
    """Monthly: each person's continuity of care over the last 12 months (next month's risk uses it)."""
    m.care.update_continuity()


def advance_clock(m) -> None:
    """Monthly: the month ends."""
    m.month += 1


def collect(m) -> None:
    """Monthly: every metric, recorded by the DataCollector."""
    m.metrics = m.results.compute()
    m.datacollector.collect(m)


class ContractingModel(mesa.Model):
    """One economy, one arrangement. `rng` is the seed; the same seed gives the same people and the same
    underlying demand draws under every arrangement (common random numbers)."""

    PHASES = (
        ("open_month", open_month),
        ("shocks", shocks),
        ("population_change", population_change),
        ("registrations", registrations),
        ("activity_plan", activity_plan),
        ("initial_procurement", initial_procurement),
        ("gp_break_points", gp_break_points),
        ("contract_renewal", contract_renewal),
        ("contract_values", contract_values),
        ("capacity", capacity),
        ("settlement_year_start", settlement_year_start),
        ("prevention_decision", prevention_decision),
        ("prevention_maturing", prevention_maturing),
        ("demand", demand),
        ("care_delivery", care_delivery),
        ("delivery_costs", delivery_costs),
        ("prevention_spend", prevention_spend),
        ("transaction_costs", transaction_costs),
        ("payments", payments),
        ("risk_sharing", risk_sharing),
        ("viability", viability),
        ("outcome_payments", outcome_payments),
        ("year_end_settlement", year_end_settlement),
        ("close_accounts", close_accounts),
        ("financial_oversight", financial_oversight),
        ("trust", trust),
        ("provider_review", provider_review),
        ("quality_review", quality_review),
        ("advance_clock", advance_clock),
        ("continuity", continuity),
        ("collect", collect),
    )

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
        simulated = self.eco["population"]["total"]["value"] * self.scale
        if simulated < MIN_PEOPLE:
            raise ConfigError(f"population_scale simulates only {simulated:.0f} people", field="population_scale",
                              value=population_scale, allowed=f"at least {MIN_PEOPLE / self.eco['population']['total']['value']:.2g} "
                              f"(>= {MIN_PEOPLE} people)")
        self.shocks = self._check_shocks(shocks or [])
        self.month = 0
        self._keys = (None, None)
        self._setup()
        self.datacollector = mesa.DataCollector(model_reporters=metrics.reporters())
        continuity(self)
        self.metrics = self.results.compute()
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
            service = s.get("service")
            if service is not None:
                group = [service] if isinstance(service, str) else service
                if s["kind"] != "demand_surge" or not isinstance(group, list) or not group \
                        or any(x not in SERVICES for x in group):
                    raise ConfigError("a shock's service is a service name or list of them, for demand_surge only",
                                      field=f"shocks[{i}].service", value=service, allowed=", ".join(SERVICES))
                service = tuple(group)
            if s["kind"] == "quality_fall" and not 0 <= size <= 1:
                raise ConfigError("a quality fall is a drop in quality between 0 and 1", field=f"shocks[{i}].size", value=size)
            out.append({"kind": s["kind"], "month": month, "size": float(size), "duration": dur, "service": service})
        return out

    def shock_level(self, kind: str, t: int, service: tuple[str, ...] | None = None) -> float:
        """Sum of sizes of shocks of a kind active in month index t (0-based; shock months are 1-based); with
        `service` (services), shocks limited to other services do not count."""
        total = 0.0
        for s in self.shocks:
            if s["kind"] == kind and t + 1 >= s["month"] and (s["duration"] is None or t + 1 < s["month"] + s["duration"]):
                if service is None or s.get("service") is None or set(service) & set(s["service"]):
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
            self._new_agent(o["id"], o["kind"], o["name"], o["nhs_body"], o.get("cost_ratio", 1.0),
                            o.get("quality", 0.7), o.get("vat_recovers"), legal_form=o.get("legal_form"),
                            outside_network=o.get("outside_network", False))
        for pr in eco["practices"]["list"]:
            self._new_agent(pr["id"], "gp_practice", pr["id"], True, 1.0, 0.7, True, list_size=pr["list_size"],
                            contract=pr["contract"])
        self.funder = next(o for o in self.orgs if o.side == "funder")
        self.ccg = next(o for o in self.orgs if o.kind == "commissioner")
        self.la = next((o for o in self.orgs if o.kind == "local_authority"), None)
        self.practices: list[GPPractice] = [o for o in self.orgs if o.side == "practice"]
        self.results = metrics.Results(self)
        self.care = Care(self)
        self.pop = Population(eco, p, self.scale, self.stream("population", 0), n_slots=self.care.n_slots,
                              place_of_practice=self.care.place_of_practice)
        self.pop.same_provider_elective = self.care.same_provider_share("outpatient", "elective")
        self.pop.compute_rates()
        self.pop.health[:] = self.pop.ref_health
        self.update_list_sizes()
        # baseline expectations: current spend, costs and capacity
        self.finance = Finance(self)
        self.finance.set_baseline()
        self.care.plan_capacity(self.finance.exp_units)
        # GP participation decisions, then the contract network
        rng = self.stream("behaviour", 0)
        mean = p["participation"]["autonomy_mean"]
        autonomy = rng.beta(2.0, 2.0 * (1 - mean) / max(mean, 1e-6), size=len(self.practices))
        salaried_u = rng.random(len(self.practices))
        for pr, a, u in zip(self.practices, autonomy, salaried_u):
            pr.decide_participation(a, u)
        self.network = ContractNetwork()
        for o in self.orgs:
            self.network.add_node(o.org_id, o.kind, o.nhs_body, o.name, o.expected_income)
        build_network(self.network, eco, self.arr, p, self.finance.spend,
                      {pr.org_id: pr.mode for pr in self.practices}, {pr.org_id: pr.salaried for pr in self.practices},
                      float(self.pop.size), {pr.org_id: pr.list_size for pr in self.practices},
                      permits=self.ccg.permits_subcontract, cost_floor=self.finance.cost_floor,
                      holder_vat=self.finance.vat_rate(self.holder_spec()) if self.arr["holder"] else 0.0,
                      spend_place=self.finance.spend_place, place_population=self.place_sizes())
        self.refresh_structure()
        self.finance.open_reserves()
        self.finance.set_allocations()
        self.prevention = Prevention(self)
        self.finance.start_settlement_year()
        self.finance.set_outcome_baselines()
        self.initial_contracts = self.network.graph.copy()
        for pr in self.practices:
            pr.income_before = p["funding"]["gp_capitation"] * pr.list_size

    def holder_spec(self) -> Organisation | None:
        """The organisation the arrangement names as holder (before or after it is appointed)."""
        h = self.arr["holder"]
        return self.org_by_id[h["org"] or h["new"]["id"]] if h else None

    def _new_agent(self, oid, kind, name, nhs_body, cost_ratio, quality, vat_recovers, **kw) -> Organisation:
        agent = agent_class(kind)(self, oid, kind, name, nhs_body, len(self.orgs), cost_ratio=cost_ratio,
                                  quality=quality, vat_recovers=vat_recovers, **kw)
        self.orgs.append(agent)
        self.org_by_id[oid] = agent
        return agent

    def add_organisation(self, oid: str, kind: str, name: str, nhs_body: bool, cost_ratio: float, quality: float,
                         vat_recovers: bool | None, like: Organisation, role: str = "provider",
                         services: list[str] | None = None) -> Organisation:
        """A new organisation during the run, taking over `like`'s work (all of it: a successor; or only
        `services`: a new provider for a terminated service): every part grows to include it."""
        org = self._new_agent(oid, kind, name, nhs_body, cost_ratio, quality, vat_recovers, legal_form=like.legal_form)
        share = 1.0 if services is None else self.finance.cost_share(like, services)
        org.expected_cost, org.fixed_cost = like.expected_cost * share, like.fixed_cost * share
        org.expected_income = like.expected_income * share
        if services is not None:
            like.expected_cost, like.fixed_cost = like.expected_cost * (1 - share), like.fixed_cost * (1 - share)
            like.expected_income *= 1 - share
        self.finance.add_organisation(org, like, services)
        self.pop.add_organisation(org, like)
        self.care.add_organisation(org, like, services)
        self.network.add_node(oid, kind, nhs_body, name, like.expected_income, role=role)
        return org

    # ------------------------------------------------------------------ shared lookups
    @property
    def contracts(self):
        """The contract network (networkx.MultiDiGraph, payer -> payee, keyed by contract id)."""
        return self.network.graph

    @property
    def holder(self) -> Organisation | None:
        """The organisation holding the population contract (None without one, or after it failed)."""
        return self.org_by_id[self.network.holder] if self.network.holder else None

    @property
    def ledger(self):
        return self.finance.ledger

    def party(self, org: Organisation) -> str:
        """The finance.parquet party of an organisation: funder, commissioner, lead, providers, gp_practices."""
        if org.side == "commissioner":
            return "commissioner"
        return PARTY_OF_ROLE.get(self.network.role(org.org_id), org.info.party)

    def place_sizes(self) -> list[float]:
        """Registered people per place (from practices' lists)."""
        if self.care.n_places == 1:
            return [float(self.pop.size)]
        return list(np.bincount(self.care.place_of_practice, weights=[pr.list_size for pr in self.practices],
                                minlength=self.care.n_places).astype(float))

    def update_list_sizes(self) -> None:
        for pr, n in zip(self.practices, self.pop.list_sizes()):
            pr.list_size = float(n)

    def refresh_structure(self) -> None:
        """The contract network changed: recompute the routing and coordination that depend on it."""
        self.care.refresh()

    # ------------------------------------------------------------------ the month
    def step(self) -> None:
        for _name, phase in self.PHASES:
            phase(self)

    def run(self, months: int) -> "ContractingModel":
        for _ in range(months):
            self.step()
        return self

    # ------------------------------------------------------------------ outputs
    def finance_records(self, include_partial: bool = True) -> list[dict]:
        """One row per organisation per year (and the current part-year when asked)."""
        rows = list(self.results.year_records)
        if include_partial and self.month % 12 != 0:
            year = self.month // 12 + 1
            led = self.finance.ledger
            inc, cost = led.year_income, led.year_cost
            for o in self.orgs:
                rows.append({"year": year, "org_id": o.org_id, "org_kind": o.kind, "party": self.party(o),
                             "income": float(inc[o.idx]), "cost": float(cost[o.idx]),
                             "surplus": float(inc[o.idx] - cost[o.idx]), "reserves": o.reserves,
                             "cash_support": float(self.finance.support_ytd[o.idx]),
                             "loans": float(self.finance.loans[o.idx]), "legal_form": o.legal_form,
                             "oversight": o.oversight})
        return rows

    @property
    def events(self) -> list[dict]:
        """Failures, terminations, notices and returns, in order (for the viz and reports)."""
        return self.results.events

    def system_cost_total(self) -> float:
        return self.finance.ledger.system_cost()

    def coordinating_contracts(self) -> int:
        return sum(1 for c in self.network.active() if c.kind in COORDINATING)


__all__ = ["ContractingModel", "SERVICES"]
