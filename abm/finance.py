"""Money in the model: baseline spend, allocations, monthly costs and payments, and the year-end
settlement under each contract's risk terms. Every movement goes through the ledger.
"""
from __future__ import annotations

import numpy as np

from .contracts import Contract, build_network
from .params import SERVICES, load_arrangement

S = {s: i for i, s in enumerate(SERVICES)}


# ------------------------------------------------------------------ baseline
def set_baseline(m) -> None:
    """Expected yearly activity, current spend (at tariff), costs and capacity of every organisation.

    Contract values are set from current spend (002 §23: WPAP from population and current spend), and
    the allocation from the status quo's spend, so it is the same whatever the arrangement.
    """
    p, pop = m.p, m.pop
    n_orgs = len(m.orgs)
    unit = p["costs"]["unit_cost"]
    price = {s: unit[s] * p["tariff"]["price_to_cost"] for s in SERVICES}
    d0 = p["digital"]["baseline_share"]
    tr = p["transitions"]
    tariff_resp = 1 + p["payment_response"]["tariff_activity"]
    status_quo = m.arr["standard_payment"]
    em_rate = pop.rate["emergency"]
    band = pop.band
    disc_comm = float((em_rate * np.asarray(tr["discharge_to_community"])[band]).sum()) * tr["community_contacts_per_discharge"]
    disc_sc = float((em_rate * np.asarray(tr["discharge_to_social_care"])[band]).sum()) * tr["social_care_weeks_per_discharge"]
    total = {
        "gp_f2f": None, "gp_digital": None,
        "community": float(pop.rate["community_contacts"].sum()) + disc_comm,
        "outpatient": float(pop.rate["outpatient"].sum()),
        "elective": float(pop.rate["elective"].sum()),
        "emergency": float(em_rate.sum()),
        "mental_health": float(pop.rate["mental_health"].sum()),
        "social_care": float(pop.rate["social_care"].sum()) + disc_sc,
    }
    gp_by_practice = np.bincount(pop.practice, weights=pop.rate["gp_contacts"], minlength=len(m.practices))
    exp_units = np.zeros((n_orgs, len(SERVICES)))
    for s, shares in m.service_providers.items():
        for oid, sh in shares.items():
            if oid == "practice":
                split = (1 - d0) if s == "gp_f2f" else d0
                exp_units[m.practice_idx, S[s]] += gp_by_practice * split * sh
                continue
            o = m.org_by_id[oid]
            if s in ("gp_f2f", "gp_digital"):
                split = (1 - d0) if s == "gp_f2f" else d0
                exp_units[o.idx, S[s]] += gp_by_practice.sum() * split * sh
            else:
                resp = tariff_resp if s in ("outpatient", "elective") and status_quo.get(o.kind) == "tariff" else 1.0
                exp_units[o.idx, S[s]] += total[s] * sh * resp
    m.exp_units = exp_units
    m.uplift = 1.0
    fixed_share = p["costs"]["fixed_cost_share"]
    m.fixed_share = np.array([fixed_share.get(o.kind, 0.5) for o in m.orgs])
    m.spend = {}
    unit_arr = np.array([unit[s] for s in SERVICES])
    price_arr = np.array([price[s] for s in SERVICES])
    cap = p["funding"]["gp_capitation"]
    billing = p["transaction"]["billing_share"]
    delay = _status_quo_delay_cost(m)
    m.cost_scale = np.ones(n_orgs)
    for o in m.orgs:
        row = exp_units[o.idx]
        delivery = float((row * unit_arr).sum())
        if o.kind == "gp_practice":
            o.expected_income = cap * o.list_size
        else:
            m.spend[o.org_id] = {s: float(row[S[s]] * price_arr[S[s]]) for s in SERVICES if row[S[s]] > 0}
            o.expected_income = float(sum(m.spend[o.org_id].values()))
        # status quo in balance: costs other than delivery are met from the same income
        extras = billing.get(status_quo.get(o.kind, "capitation" if o.kind == "gp_practice" else "block"), 0.0) \
            * o.expected_income + delay.get(o.idx, 0.0)
        if delivery > 0:
            m.cost_scale[o.idx] = float(np.clip((o.expected_income - extras) / delivery, 0.5, 1.5))
        o.expected_cost = delivery * m.cost_scale[o.idx] * o.cost_ratio
        o.fixed_cost = float(m.fixed_share[o.idx] * o.expected_cost)
        if o.kind == "gp_practice":
            m.spend[o.org_id] = {"gp_total_cost": o.expected_cost}
    m.price = price_arr
    m.unit_cost = unit_arr
    m.capacity = exp_units * p["costs"]["capacity_headroom"] / 12.0
    refresh_var_unit(m)


def _status_quo_delay_cost(m) -> dict[int, float]:
    """Expected yearly cost of discharges delayed at uncovered hand-offs under the status quo (acute only)."""
    p, pop = m.p, m.pop
    tr = p["transitions"]
    band = pop.band
    share = np.asarray(tr["discharge_to_community"]) + np.asarray(tr["discharge_to_social_care"])
    n = float((pop.rate["emergency"] * share[band]).sum())
    out = {}
    for oid, sh in m.service_providers["emergency"].items():
        if oid != "practice":
            out[m.org_by_id[oid].idx] = n * sh * p["costs"]["delayed_discharge_days"] * p["costs"]["excess_bed_day_cost"]
    return out


def refresh_var_unit(m) -> None:
    """Variable cost per unit of each service at each organisation (after cost-ratio changes)."""
    ratio = np.array([o.cost_ratio for o in m.orgs]) * m.cost_scale
    m.var_unit = (1 - m.fixed_share)[:, None] * m.unit_cost[None, :] * ratio[:, None]


def contract_admin_cost(m, c: Contract) -> float:
    """Yearly cost to the payer of managing a contract (transaction cost)."""
    tx = m.p["transaction"]
    if c.kind == "allocation" or c.status != "active":
        return 0.0
    key = f"standard_{'tariff' if c.payment == 'tariff' else 'block'}" if c.kind == "standard" else c.kind
    return tx["contract_cost"].get(key, 0.0) * m.scale + tx["monitoring_share"].get(c.payment, 0.0) * c.value


def open_reserves(m) -> None:
    rs = m.p["funding"]["reserve_share"]
    for o in m.orgs:
        if o.kind == "funder":
            continue
        income = o.expected_income
        if m.holder is o:
            income = max(income, sum(m.net.contracts[c].value for c in m.net.holder_contracts))
        m.ledger.balance[o.idx] = rs.get(o.kind, 0.03) * income
    m.ledger.opening = m.ledger.balance.copy()


def set_allocations(m) -> None:
    """Allocations from the status quo's spend plus running and contracting costs, per head."""
    p = m.p
    frag = load_arrangement("fragmented", economy=m.eco)
    modes = {pr.org_id: "outside" for pr in m.practices}
    lists = {pr.org_id: pr.list_size for pr in m.practices}
    net = build_network(m.eco, frag, p, m.spend, modes, {}, float(m.pop.n), lists, m.scale)
    need = {m.ccg.org_id: p["funding"]["running_cost_per_head"] * m.pop.n}
    if m.la:
        need[m.la.org_id] = 0.0
    for c in net.contracts.values():
        if c.payer in need and c.kind != "allocation":
            need[c.payer] += c.value + contract_admin_cost(m, c)
    margin = 1 + p["funding"]["allocation_margin"]
    for oid, amount in need.items():
        c = m.net.contracts[f"alloc:{oid}"]
        c.value = amount * margin
        c.per_capita = c.value / m.pop.n
        m.org_by_id[oid].expected_income = c.value
        m.sync_edge(c.cid)


def procurement_cost(m, value: float) -> float:
    """One-off cost of procuring a contract above the PCR threshold (002 §8), at population scale."""
    tx = m.p["transaction"]
    full_value = value / m.scale
    if full_value <= tx["procurement_threshold"]:
        return 0.0
    pc = tx["procurement_cost"]
    return min(pc["max"], pc["base"] + pc["per_million"] * full_value / 1e6) * m.scale


def procure(m, c: Contract) -> None:
    cost = procurement_cost(m, c.value)
    if cost:
        m.ledger.spend(m.org_by_id[c.payer].idx, cost, "transaction")
        m.cum["procurement"] += cost
        m.record_add("transaction", m.month, cost)
        m.record_add("cost", m.month, cost)
    c.procured = True


def initial_procurement(m) -> None:
    """New holder and alliance contracts are procured at the start (alliance counted once)."""
    seen_alliance = False
    for c in list(m.net.contracts.values()):
        if c.kind in ("prime", "icp"):
            procure(m, c)
        elif c.kind == "alliance" and not seen_alliance:
            total = sum(m.org_by_id[x.payee].expected_income for x in m.net.contracts.values() if x.kind == "alliance")
            probe = Contract("alliance", "alliance", "none", c.payer, c.payee, value=total)
            procure(m, probe)
            seen_alliance = True


# ------------------------------------------------------------------ yearly contract upkeep
def renew_contracts(m, t: int) -> None:
    """Contracts at the end of their term are re-procured (holder) or renewed for another term."""
    for c in m.net.contracts.values():
        if c.status == "active" and c.end is not None and c.end <= t:
            term = c.end - c.start
            c.start, c.end = t, t + term
            if c.kind in ("prime", "icp"):
                procure(m, c)
            m.sync_edge(c.cid)


def update_contract_values(m, t: int) -> None:
    """Yearly values: allocations and population payments move with population (001); capitation with lists."""
    grow = m.p["funding"]["growth_with_population"]
    m.uplift = (1 + m.p["funding"]["real_growth"]) ** (t // 12)
    up = m.uplift
    m.capacity = m.exp_units * m.p["costs"]["capacity_headroom"] / 12.0 * up
    n = float(m.pop.n)
    lists = {pr.org_id: pr.list_size for pr in m.practices}
    full_list = sum(pr.list_size for pr in m.practices if pr.mode == "full" and not pr.failed)
    for c in m.net.contracts.values():
        if c.status != "active":
            continue
        if not c.base_value:
            c.base_value = c.value
        if c.kind == "allocation" or c.kind in ("prime", "icp"):
            if grow and c.per_capita:
                c.value = (c.per_capita * n + c.gp_per_head * full_list) * up
            else:
                c.value = c.base_value * up
        elif c.payee in lists and c.per_capita:
            c.value = c.per_capita * lists[c.payee] * up
        elif c.kind == "salaried":
            pr = m.org_by_id[c.payee]
            c.value = pr.fixed_cost * up + float((m.exp_units[pr.idx] * m.var_unit[pr.idx]).sum()) * (
                pr.list_size / max(pr.expected_list, 1.0))
        elif c.payment in ("block", "fee", "capitation"):
            c.value = c.base_value * up
        c.year_paid = 0.0
        m.sync_edge(c.cid)


# ------------------------------------------------------------------ monthly costs and payments
def costs(m, t: int) -> None:
    """Delivery costs, prevention spend, transaction and running costs, all to sinks."""
    p = m.p
    led = m.ledger
    infl = 1.0 + m.shock_level("cost_inflation", t)
    shortfall = 1.0 + m.shock_level("efficiency_shortfall", t)
    n_orgs = len(m.orgs)
    scale_list = np.ones(n_orgs)
    for pr in m.practices:  # a practice's fixed cost follows its list (staff), with a lag of a year
        scale_list[pr.idx] = pr.fixed_scale
    fixed = np.array([o.fixed_cost for o in m.orgs]) * scale_list * m.uplift / 12.0
    var = (m.units * m.var_unit).sum(axis=1)
    care = (fixed + var) * infl + m.extra_cost
    is_provider = np.array([o.kind not in ("gp_practice", "funder", "commissioner", "local_authority") for o in m.orgs])
    care = np.where(is_provider, care * shortfall, care)
    alive = np.array([not o.failed for o in m.orgs])
    care = care * alive
    led.spend_many(np.arange(n_orgs), care, "care")
    m.year_care += care
    month_cost = float(care.sum())
    # interim running of a failed provider's services costs extra; the commissioner re-procuring pays it
    interim = sum(care[o.idx] for o in m.orgs if o.interim_until > t) * p["failure"]["interim_premium"]
    if interim:
        led.spend(m.ccg.idx, interim, "care")
        month_cost += interim
    # prevention and proactive care, paid by whoever decided it
    prev = 0.0
    for idx, amount in m.prev_plan.get("payers", []):
        led.spend(idx, amount / 12.0, "care")
        prev += amount / 12.0
    if prev:
        m.pop.invest(m.prev_plan["reached"], prev)
    m.cum["prevention"] += prev
    m.record("prevention", t, prev)
    # transaction costs: contract management, alliance governance, subcontract management
    tx = p["transaction"]
    trans = 0.0
    for c in m.active_contracts():
        if c.kind == "allocation":
            continue
        payer = m.org_by_id[c.payer]
        if payer.failed:
            continue
        cost = contract_admin_cost(m, c) / 12.0
        if c.kind == "alliance":
            mult = 1 + (m.p["trust"]["governance_multiplier"] - 1) * (1 - c.trust)
            gov = tx["alliance_governance_per_member"] * m.scale * mult / 12.0
            led.spend(m.org_by_id[c.payee].idx, gov, "transaction")
            trans += gov
        if c.kind in ("subcontract", "salaried"):
            cost += tx["subcontract_management"] * c.value / 12.0
        led.spend(payer.idx, cost, "transaction")
        trans += cost
    running = p["funding"]["running_cost_per_head"] * m.pop.n / 12.0
    led.spend(m.ccg.idx, running, "running")
    m.record_add("transaction", t, trans)
    m.record_add("cost", t, month_cost + prev + trans + running)


def payments(m, t: int) -> None:
    """Each active contract pays by its payment kind; billing costs and VAT leakage follow payments."""
    led = m.ledger
    tx = m.p["transaction"]
    vat = m.p["vat"]
    billing = 0.0
    leak = 0.0
    for c in m.active_contracts():
        payer, payee = m.org_by_id[c.payer], m.org_by_id[c.payee]
        if payee.failed:
            continue
        if c.payment == "tariff":
            cols = [S[s] for s in c.services]
            amount = c.price_factor * m.uplift * float((m.units[payee.idx, cols] * m.price[cols]).sum())
        elif c.payment == "none":
            continue
        else:
            amount = c.value / 12.0
        if payer.failed:
            # the holder has failed: the commissioner covers part of what it owed this month
            if c.kind in ("subcontract", "salaried"):
                share = m.p["failure"]["cover_share"]
                led.transfer(m.ccg.idx, payee.idx, amount * share, "settlement")
            continue
        led.transfer(payer.idx, payee.idx, amount, c.payment)
        c.year_paid += amount
        b = tx["billing_share"].get(c.payment, 0.0) * amount
        if b:
            led.spend(payee.idx, b, "transaction")
            billing += b
        if c.kind in ("subcontract", "salaried") and m.holder is payer:
            rate = vat["rate"] * vat["vatable_share"] * (vat["nhs_residual_share"] if payer.vat_recovers else 1.0)
            v = rate * amount
            led.spend(payer.idx, v, "vat")
            leak += v
    m.cum["vat"] += leak
    m.record_add("transaction", t, billing)
    m.record_add("cost", t, billing + leak)


# ------------------------------------------------------------------ year-end settlement
def attributable_cost(m, c: Contract) -> float:
    """The part of the payee's yearly delivery cost that the contract's services account for."""
    o = m.org_by_id[c.payee]
    if o.kind == "gp_practice":
        return float(m.year_care[o.idx])
    cols = [S[s] for s in c.services]
    exp_all = float((m.exp_units[o.idx] * m.unit_cost).sum())
    exp_c = float((m.exp_units[o.idx, cols] * m.unit_cost[cols]).sum())
    return float(m.year_care[o.idx]) * (exp_c / exp_all if exp_all > 0 else 0.0)


def corridor_transfer(terms: dict, deviation: float, value: float) -> float:
    """Payer's share of a holder's deviation (positive = overspend) under its risk terms."""
    kind = terms.get("kind", "none") if terms else "none"
    x = abs(deviation)
    sign = 1.0 if deviation > 0 else -1.0
    if kind == "corridor":
        bands = list(terms["bands"]) + [(float("inf"), 0.0)]
        share_amount = 0.0
        for (lo, s), (hi, _) in zip(bands[:-1], bands[1:]):
            if x > lo:
                share_amount += s * (min(x, hi) - lo)
        return sign * share_amount * value
    if kind == "gain_loss":
        beyond = max(0.0, x - terms["min_rate"])
        return sign * min(terms["share"] * beyond, terms["cap"]) * value
    return 0.0


def _settle(m, payer: int, payee: int, amount: float) -> None:
    """A settlement transfer, remembered so pre-settlement positions can be recovered."""
    m.ledger.transfer(payer, payee, amount, "settlement")
    if amount > 0:
        m.settle_in[payee] += amount
        m.settle_out[payer] += amount
    elif amount < 0:
        m.settle_in[payer] -= amount
        m.settle_out[payee] -= amount


def settle_to_date(m, t: int) -> None:
    """Risk sharing trued up monthly in arrears on year-to-date figures, so partners carry their shared
    position as the year unfolds (and a failure test sees it); by year end it equals an annual settlement.

    1. Subcontracts and salaried practices: the holder absorbs `pass_through` of the payee's variance.
    2. Alliance pool: the members' overspend against the alliance budget (what the commissioner planned to
       pay them) is shared by agreed shares, the commissioner included (004).
    """
    if len(m.settle_in) < len(m.orgs):
        grow = len(m.orgs) - len(m.settle_in)
        m.settle_in = np.append(m.settle_in, np.zeros(grow))
        m.settle_out = np.append(m.settle_out, np.zeros(grow))
    led = m.ledger
    for c in m.active_contracts():
        if c.pass_through <= 0 or c.payment == "tariff":
            continue
        if m.org_by_id[c.payer].failed or m.org_by_id[c.payee].failed:
            continue
        target = c.pass_through * (attributable_cost(m, c) - c.year_paid)
        _settle(m, m.org_by_id[c.payer].idx, m.org_by_id[c.payee].idx, target - c.settled_ytd)
        m.cum["pass_through"] += abs(target - c.settled_ytd)
        c.settled_ytd = target
    members = [c for c in m.active_contracts() if c.kind == "alliance" and not m.org_by_id[c.payee].failed]
    if members:
        al = m.arr["alliance"]
        f = al["pool_fraction"]
        ids = sorted({c.payee for c in members})
        part = (t % 12 + 1) / 12.0
        budget = dict.fromkeys(ids, 0.0)
        for c in m.active_contracts():
            if c.payee in budget and c.kind not in ("alliance", "allocation"):
                budget[c.payee] += c.value * part
        idx = {i: m.org_by_id[i].idx for i in ids}
        cost = {i: led.year_cost[idx[i]] - m.settle_out[idx[i]] for i in ids}
        income = {i: led.year_income[idx[i]] - m.settle_in[idx[i]] for i in ids}
        over = sum(cost[i] - budget[i] for i in ids)                      # pool overspend D to date
        shares = al["risk_shares"]
        for i in ids:
            x = f * ((cost[i] - income[i]) - shares.get(i, 0.0) * over)
            _settle(m, m.ccg.idx, idx[i], x - m.pool_ytd.get(i, 0.0))
            m.pool_ytd[i] = x
        m.last_pool = over


def settle_year(m, t: int) -> None:
    """Risk corridors / gain-loss shares on the holder's population contract, on the year's result."""
    led = m.ledger
    for cid in m.net.holder_contracts:
        c = m.net.contracts[cid]
        if c.status != "active" or not c.risk_terms or c.risk_terms.get("kind", "none") == "none":
            continue
        h = m.org_by_id[c.payee]
        if h.failed or c.value <= 0:
            continue
        income = led.year_income[h.idx]
        deviation = (led.year_cost[h.idx] - income) / max(income, 1.0)
        amt = corridor_transfer(c.risk_terms, deviation, income)
        _settle(m, m.org_by_id[c.payer].idx, h.idx, amt)


def start_settlement_year(m) -> None:
    for c in m.net.contracts.values():
        c.settled_ytd = 0.0
    m.pool_ytd = {}
    m.settle_in = np.zeros(len(m.orgs))
    m.settle_out = np.zeros(len(m.orgs))
