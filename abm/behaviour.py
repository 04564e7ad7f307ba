"""Decisions that make the arrangements differ: GP participation and the right to return, prevention
investment, relational trust and data sharing, quality and cost recovery, oversight, failure.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .contracts import Contract
from .finance import procure, refresh_var_unit

PARTNER_KINDS = ("alliance", "subcontract", "integration_agreement", "salaried", "prime", "icp")


# ------------------------------------------------------------------ GP participation
def choose_participation(m) -> None:
    """Each practice picks outside / partial / full by expected income, trust in the lead and autonomy (002 §13)."""
    terms = m.arr["practices"]
    allowed = terms["allowed"]
    pp = m.p["participation"]
    rng = m.stream("behaviour", 0)
    mean = pp["autonomy_mean"]
    a_par = 2.0
    b_par = a_par * (1 - mean) / max(mean, 1e-6)
    autonomy = rng.beta(a_par, b_par, size=len(m.practices))
    salaried_u = rng.random(len(m.practices))
    cap = m.p["funding"]["gp_capitation"]
    trust = m.p["trust"]["initial"]
    involvement = {"outside": 0.0, "partial": 0.5, "full": 1.0}
    gain = {"outside": 0.0, "partial": terms["integration_fee_per_head"] / cap, "full": terms["full_uplift"]}
    for pr, a, u in zip(m.practices, autonomy, salaried_u):
        pr.autonomy = float(a)
        pr.expected_list = pr.list_size
        pr.fixed_scale = 1.0
        best, best_u = "outside", 0.0
        for mode in allowed:
            util = (pp["income_weight"] * gain[mode] + pp["trust_weight"] * (trust - 0.5) * involvement[mode]
                    - pp["autonomy_cost"][mode] * a)
            if util > best_u:
                best, best_u = mode, util
        pr.mode = best
        pr.salaried = bool(best == "full" and u < terms["salaried_share"])


def practice_counts(m) -> dict[str, int]:
    out = {"outside": 0, "partial": 0, "full": 0, "returned": 0}
    for pr in m.practices:
        if pr.failed:
            continue
        out[pr.mode] += 1
        out["returned"] += pr.returned
    return out


def break_points(m, t: int) -> None:
    """Right to return (003): notice given 12 months before a break point, once; GMS/PMS reactivated,
    but most patients stay with the ICP and funding beyond core GMS/PMS does not come back."""
    terms = m.arr["practices"]
    if not m.holder or not terms["break_points_months"]:
        return
    pp = m.p["participation"]
    cap = m.p["funding"]["gp_capitation"]
    for pr in m.practices:
        if pr.failed:
            continue
        # notice
        if pr.mode == "full" and not pr.returned and pr.notice_month is None:
            for bp in terms["break_points_months"]:
                if bp - terms["notice_months"] == t:
                    c = m.net.contracts[m.net.practice_route[pr.org_id]]
                    gms_income = cap * pr.list_size
                    gap = 0.0 if pr.salaried else (pr.last_income - gms_income) / max(gms_income, 1.0)
                    if gap < pp["return_threshold"] or c.trust < 0.3:
                        pr.notice_month = bp
                        m.events.append({"month": t, "event": "notice", "org": pr.org_id})
        # return at the break point
        if pr.notice_month is not None and pr.notice_month == t:
            _return_practice(m, pr, t)


def _return_practice(m, pr, t: int) -> None:
    terms = m.arr["practices"]
    rng = m.stream("behaviour", 10_000 + t)
    c = m.net.contracts[m.net.practice_route[pr.org_id]]
    c.status, c.end = "terminated", t
    m.sync_edge(c.cid)
    gms = m.net.contracts[f"gms:{pr.org_id}"]
    gms.status = "active"
    gms.start = t
    m.sync_edge(gms.cid)
    m.net.practice_route[pr.org_id] = gms.cid
    pr.mode = "outside"
    pr.returned = True
    pr.notice_month = None
    # patients stay with the ICP by default: move them to practices still fully integrated
    others = np.array([q.idx for q in m.practices
                       if q.mode == "full" and not q.failed and q.notice_month is None])
    k = m.practices.index(pr)
    rows = np.flatnonzero(m.pop.practice == k)
    stay = rows[rng.random(len(rows)) < terms["patients_stay_share"]]
    if len(others) and len(stay):
        pos = {q.idx: i for i, q in enumerate(m.practices)}
        targets = np.array([pos[i] for i in others])
        m.pop.practice[stay] = rng.choice(targets, size=len(stay))
    m.practice_list = np.bincount(m.pop.practice, minlength=len(m.practices)).astype(float)
    for q, n in zip(m.practices, m.practice_list):
        q.list_size = float(n)
    gms.value = gms.per_capita * pr.list_size
    m.events.append({"month": t, "event": "return", "org": pr.org_id})
    m.refresh_structure()


# ------------------------------------------------------------------ coverage and data sharing
def data_sharing(m, trust: float) -> float:
    lo = m.p["trust"]["data_sharing_min"]
    return lo + (1 - lo) * trust


def refresh_coverage(m) -> None:
    """Which organisation pairs a coordinating contract covers, and how well (trust -> data sharing).

    `entity` maps salaried practices onto the holder: a hand-off inside one organisation is no hand-off.
    """
    n = len(m.orgs)
    ent = np.arange(n)
    cov = np.zeros((n, n))
    if m.holder and not m.holder.failed:
        h = m.holder.idx
        inside = {h: 1.0}
        for c in m.active_contracts():
            if c.payer == m.holder.org_id and c.kind in ("subcontract", "integration_agreement", "salaried"):
                o = m.org_by_id[c.payee]
                if o.failed:
                    continue
                inside[o.idx] = data_sharing(m, c.trust)
                if c.kind == "salaried":
                    ent[o.idx] = h
        idx = np.array(list(inside))
        q = np.array([inside[i] for i in idx])
        cov[np.ix_(idx, idx)] = np.minimum.outer(q, q)
    members = [c for c in m.active_contracts() if c.kind == "alliance"]
    if members:
        idx = np.array([m.org_by_id[c.payee].idx for c in members if not m.org_by_id[c.payee].failed])
        ds = data_sharing(m, float(np.mean([c.trust for c in members])))
        if len(idx):
            cov[np.ix_(idx, idx)] = np.maximum(cov[np.ix_(idx, idx)], ds)
    m.entity = ent
    m.coverage = cov


# ------------------------------------------------------------------ prevention
def kept_share(m, decider) -> float:
    """Share of the cost of an avoided emergency admission that lands on the decider (its incentive)."""
    acute = m.routing["emergency"]["idx"][0]
    acute_org = m.orgs[acute]
    cid = m.net.route.get(("emergency", acute_org.org_id))
    if cid is None:
        return 0.0
    c = m.net.contracts[cid]
    variable = 1 - m.fixed_share[acute]
    if decider is acute_org:
        # paid per admission: losing an admission loses the tariff but saves only the variable cost
        return (variable - 1.0) if c.payment == "tariff" else variable
    if c.payer == decider.org_id:
        if c.payment == "tariff":
            return 1.0
        return c.pass_through * variable
    return 0.0


def decide_prevention(m, t: int) -> None:
    """Each year the population-budget holder decides prevention spend from the saving it keeps within the
    remaining contract term (002 §12); the alliance needs unanimity; fragmented has a small fixed line."""
    pv = m.p["prevention"]
    who = m.arr["prevention_holder"]
    payers: list[tuple[int, float]] = []
    budget = 0.0
    if who == "commissioner":
        budget = pv["public_health_share"] * m.net.contracts[f"alloc:{m.ccg.org_id}"].value
        payers = [(m.ccg.idx, budget)]
    elif who == "holder" and m.holder and not m.holder.failed:
        c = m.net.contracts[m.net.holder_contracts[0]]
        if c.status == "active":
            remaining = (c.end - t) / 12.0 if c.end is not None else 10.0
            budget = pv["budget_share"] * c.value * incentive(m, remaining, kept_share(m, m.holder))
            payers = [(m.holder.idx, budget)]
    elif who == "alliance":
        members = [c for c in m.active_contracts() if c.kind == "alliance"]
        al = m.arr["alliance"]
        agree = all(c.trust >= al["unanimity_trust"] for c in members) if al["unanimity"] else True
        m.alliance_agreed = agree
        if members and agree:
            remaining = (members[0].end - t) / 12.0 if members[0].end is not None else 10.0
            total = sum(m.org_by_id[c.payee].expected_income for c in members)
            budget = pv["budget_share"] * total * incentive(m, remaining, al["pool_fraction"])
            # the commissioner funds its risk share; members the rest, in proportion to their budgets
            s_c = al["risk_shares"].get(m.ccg.org_id, 0.0)
            payers = [(m.ccg.idx, budget * s_c)] + [
                (m.org_by_id[c.payee].idx, budget * (1 - s_c) * m.org_by_id[c.payee].expected_income / total)
                for c in members]
    m.prev_plan = {"payers": payers, "reached": _reach(m, t, budget), "budget": budget}


def incentive(m, remaining_years: float, kept: float) -> float:
    """0-1: how much of the maximum budget a holder invests: expected return it keeps inside the term."""
    pv = m.p["prevention"]
    lag = pv["lag_months"] / 12.0
    life = 1.0 / max(pv["decay_per_year"], 1e-6)
    coverage = np.clip((remaining_years - lag) / life, 0.0, 1.0)
    return float(np.clip(pv["expected_return"] * max(kept, 0.0) * coverage, 0.0, 1.0))


def _reach(m, t: int, budget: float) -> np.ndarray:
    """Population health analytics: the highest predicted risk first, or an even spread."""
    if budget <= 0:
        return np.empty(0, np.int64)
    pv = m.p["prevention"]
    n = m.pop.n
    k = max(1, int(pv["reach_share"] * n))
    if pv["targeting"] == "risk":
        score = m.pop.risk_score()
        return np.argpartition(-score, k - 1)[:k]
    rng = m.stream("behaviour", 20_000 + t)
    return rng.choice(n, size=k, replace=False)


# ------------------------------------------------------------------ failure
def check_failures(m, t: int) -> None:
    """An organisation whose reserves fall below its threshold fails; its contracts end (UCP, 8 months)."""
    thr = m.p["failure"]["threshold"]
    for o in list(m.orgs):
        if o.failed or o.kind in ("funder", "commissioner", "local_authority"):
            continue
        income = max(o.last_income, o.expected_income)
        if income <= 0:
            continue
        if o.reserves < thr * income:
            fail(m, o, t)


def fail(m, o, t: int, reason: str = "financial") -> None:
    o.failed = True
    o.failed_month = t
    m.failures += 1
    m.events.append({"month": t, "event": f"failure ({reason})", "org": o.org_id})
    if o.kind == "gp_practice":
        _close_practice(m, o, t)
    else:
        if m.holder is o:
            _revert_holder(m, t)
        _succeed(m, o, t)
    if m.contracts.has_node(o.org_id):
        m.contracts.nodes[o.org_id]["failed"] = True
    m.refresh_structure()


def _terminate(m, c: Contract, t: int) -> None:
    c.status, c.end = "terminated", t
    m.sync_edge(c.cid)


def _revert_holder(m, t: int) -> None:
    """The holder failed: its contracts end and the commissioner contracts with each provider directly."""
    std = m.arr["standard_payment"]
    for cid in m.net.holder_contracts:
        _terminate(m, m.net.contracts[cid], t)
    for c in list(m.net.contracts.values()):
        if c.payer == m.holder.org_id and c.status == "active":
            _terminate(m, c, t)
            payee = m.org_by_id[c.payee]
            if payee.kind == "gp_practice":
                gms = m.net.contracts[f"gms:{payee.org_id}"]
                gms.status, gms.start = "active", t
                m.sync_edge(gms.cid)
                m.net.practice_route[payee.org_id] = gms.cid
                payee.mode = "outside"
                continue
            if c.kind != "subcontract":
                continue
            comm = m.eco["commissioned_by"]["value"]
            payer = comm[c.services[0]]
            new = Contract(f"std2:{payer}:{payee.org_id}:{t}", "standard", std.get(payee.kind, "block"), payer,
                           payee.org_id, value=c.value / max(c.price_factor, 1e-9), start=t, services=c.services)
            m.net.contracts[new.cid] = new
            for s in c.services:
                m.net.route[(s, payee.org_id)] = new.cid
            m.sync_edge(new.cid)
            procure(m, new)
    # the holder's own services go back on a standard contract (a successor takes them if it failed)
    h = m.holder
    comm = m.eco["commissioned_by"]["value"]
    own = [s for s, sh in m.service_providers.items() if h.org_id in sh]
    by_payer: dict[str, list[str]] = {}
    for s in own:
        cid = m.net.route.get((s, h.org_id))
        if cid and m.net.contracts[cid].status == "terminated":
            by_payer.setdefault(comm[s], []).append(s)
    for payer, ss in by_payer.items():
        value = sum(m.spend[h.org_id].get(s, 0.0) for s in ss) * m.uplift
        new = Contract(f"std2:{payer}:{h.org_id}:{t}", "standard", std.get(h.kind, "block"), payer, h.org_id,
                       value=value, start=t, services=tuple(ss))
        m.net.contracts[new.cid] = new
        for s in ss:
            m.net.route[(s, h.org_id)] = new.cid
        m.sync_edge(new.cid)
    m.net.roles[h.org_id] = "provider"
    m.net.holder_contracts = []
    m.holder = None


def _succeed(m, o, t: int) -> None:
    """Services of a failed provider move to a successor after re-procurement (interim cost, new slot)."""
    services = [s for s, sh in m.service_providers.items() if o.org_id in sh]
    if not services:
        return
    k = sum(1 for x in m.orgs if x.successor_of is not None) + 2
    new_id = f"{o.org_id}~{k}"
    succ = m._add_org(new_id, o.kind, f"{o.name} (successor)", o.nhs_body, 1.0, o.quality0, o.vat_recovers)
    succ.successor_of = o.org_id
    succ.interim_until = t + m.p["failure"]["reprocurement_months"]
    m.ledger.grow(1)
    n = len(m.orgs)
    m.fixed_share = np.append(m.fixed_share, m.fixed_share[o.idx])
    m.cost_scale = np.append(m.cost_scale, m.cost_scale[o.idx])
    m.exp_units = np.vstack([m.exp_units, m.exp_units[o.idx]])
    m.capacity = np.vstack([m.capacity, m.capacity[o.idx]])
    m.backlog = np.vstack([m.backlog, m.backlog[o.idx]])
    m.backlog[o.idx] = 0
    m.year_care = np.append(m.year_care, 0.0)
    succ.expected_cost, succ.fixed_cost = o.expected_cost, o.fixed_cost
    succ.expected_income = o.expected_income
    if m.slot_of.shape[0] < n:
        m.slot_of = np.append(m.slot_of, np.zeros(16, np.int16))
    m.pop.add_slots(1)
    m.slot_of[succ.idx] = m.pop.n_slots - 1
    refresh_var_unit(m)
    # support from the funder so the successor opens with working capital
    support = m.p["funding"]["reserve_share"].get(o.kind, 0.03) * o.expected_income
    m.ledger.transfer(m.funder.idx, succ.idx, support, "support")
    for s in services:
        m.service_providers[s][new_id] = m.service_providers[s].pop(o.org_id)
    m.contracts.add_node(new_id, kind=o.kind, role=m.net.roles.get(o.org_id, "provider"), nhs_body=o.nhs_body,
                         label=succ.name, budget=float(o.expected_income), failed=False)
    m.net.roles[new_id] = m.net.roles.get(o.org_id, "provider")
    last_cost = o.last_income - o.last_surplus
    reprice = float(np.clip(last_cost / o.last_income, 1.0, 1.3)) if o.last_income > 0 else 1.0
    for c in list(m.net.contracts.values()):
        if c.status != "active" or o.org_id not in (c.payer, c.payee):
            continue
        # the successor takes the same terms for the rest of the term, with trust to rebuild;
        # re-procurement prices fixed-value contracts it receives at what the service was costing
        receives = c.payee == o.org_id
        new = replace(c, cid=f"{c.cid}~{t}", payer=c.payer if receives else new_id, payee=new_id if receives else c.payee,
                      value=c.value * (reprice if receives and c.payment in ("block", "fee") else 1.0),
                      start=t, status="active", trust=m.p["trust"]["initial"] * 0.8, fail_years=0,
                      procured=False, base_value=0.0, year_paid=0.0, settled_ytd=0.0)
        _terminate(m, c, t)
        m.net.contracts[new.cid] = new
        payee_id = new.payee if receives else c.payee
        for s in c.services:
            if m.net.route.get((s, c.payee)) == c.cid:
                m.net.route[(s, payee_id)] = new.cid
        if m.net.practice_route.get(c.payee) == c.cid:
            m.net.practice_route[c.payee] = new.cid
        if c.cid in m.net.holder_contracts:
            m.net.holder_contracts[m.net.holder_contracts.index(c.cid)] = new.cid
        m.sync_edge(new.cid)
        if receives and not m.org_by_id[c.payer].failed:
            procure(m, new)
    for key, cid in list(m.net.route.items()):
        if key[1] == o.org_id:
            m.net.route.pop(key)
    if m.holder is o:
        m.holder = succ
        m.net.holder = new_id
        m.net.roles[new_id] = "lead"


def _close_practice(m, pr, t: int) -> None:
    """A failed practice closes: its contracts end and its patients register elsewhere."""
    for c in list(m.net.contracts.values()):
        if (c.payee == pr.org_id or c.payer == pr.org_id) and c.status != "terminated":
            _terminate(m, c, t)
    rng = m.stream("behaviour", 30_000 + t)
    k = m.practices.index(pr)
    rows = np.flatnonzero(m.pop.practice == k)
    alive = np.array([i for i, q in enumerate(m.practices) if not q.failed])
    if len(alive) and len(rows):
        w = np.array([m.pop.practice_weights[i] for i in alive])
        m.pop.practice[rows] = rng.choice(alive, size=len(rows), p=w / w.sum())
        moved = np.zeros(m.pop.n, bool)
        moved[rows] = True
        m.pop.contacts.forget(practice=moved)
    m.practice_list = np.bincount(m.pop.practice, minlength=len(m.practices)).astype(float)
    for q, n in zip(m.practices, m.practice_list):
        q.list_size = float(n)
    pr.list_size = 0.0


# ------------------------------------------------------------------ year end
def year_end(m, t: int) -> None:
    """Trust (Kim 2009 asymmetric update), cost recovery and quality, commissioner oversight."""
    tr = m.p["trust"]
    ov = m.p["oversight"]
    # trust: each partnership contract learns from the payee's financial outcome this year
    for c in m.active_contracts():
        if c.kind not in PARTNER_KINDS:
            continue
        o = m.org_by_id[c.payee]
        rate = o.last_surplus / max(abs(o.last_income), 1.0)
        outcome = 0.5 + 0.5 * np.tanh(rate / 0.02)
        blended = tr["rho"] * outcome + (1 - tr["rho"]) * c.trust
        c.trust = float(max(c.trust, blended) if outcome >= 0.5 else min(c.trust, blended))
        m.sync_edge(c.cid)
    # providers in deficit cut costs (at a quality cost); quality drifts with finances and reverts
    changed = False
    for o in m.orgs:
        if o.failed or o.kind in ("funder", "commissioner", "local_authority"):
            continue
        rate = o.last_surplus / max(abs(o.last_income), 1.0)
        if rate < 0 and o.kind != "gp_practice":
            o.cost_ratio = max(0.85, o.cost_ratio + ov["recovery_rate"] * rate)
            changed = True
        o.quality = float(np.clip(o.quality + ov["quality_drift"] * rate + ov["quality_reversion"] * (o.quality0 - o.quality), 0, 1))
    if changed:
        refresh_var_unit(m)
    # oversight: sustained quality failure ends the contract and the service is re-procured (002 §22)
    for c in list(m.active_contracts()):
        if c.kind in ("allocation", "alliance", "integration_agreement", "gms_pms"):
            continue
        o = m.org_by_id[c.payee]
        if o.failed:
            continue
        c.fail_years = c.fail_years + 1 if o.quality < ov["quality_threshold"] else 0
        if c.fail_years >= ov["sustained_years"]:
            m.events.append({"month": t, "event": "terminated for quality", "org": o.org_id, "contract": c.cid})
            fail(m, o, t, reason="quality")
    m.year_care[:] = 0.0
    m.refresh_structure()
