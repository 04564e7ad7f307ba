"""Monthly demand and care: episodes routed to providers, capacity and waiting, care transitions,
contact history and health. All per-person work is vectorised over the population arrays.
"""
from __future__ import annotations

import numpy as np

from . import counter_rng as crng
from .patients import DEMAND, KMAX, poisson_levels, poisson_screened
from .params import SERVICES

S = {s: i for i, s in enumerate(SERVICES)}
CHOICE_SERVICES = ("outpatient", "elective")
# purposes of the counter-based draws of a month (stream "demand"): 0-1 the dense hashes whose bytes decide
# counts, 10+ exact refinements per service, 100+ the splits and choices for people with care this month
DENSE_HASHES = 2
REFINE, CHOICE = 10, 100


def draw(m, t: int, purpose: int, rows: np.ndarray) -> np.ndarray:
    """Uniforms (float32) for `rows` in month t for one choice or split: the same whoever else draws."""
    return crng.uniform32(m.counter_key("demand", t, CHOICE + purpose), rows)


def init_state(m) -> None:
    n_orgs = len(m.orgs)
    m.backlog = np.zeros((n_orgs, len(SERVICES)))
    m.units = np.zeros((n_orgs, len(SERVICES)))
    m.coc_patient = np.zeros(m.pop.n, dtype=np.float32)     # Bice-Boxerman index, 0 where undefined
    m.coc_valid = np.zeros(m.pop.n, dtype=bool)
    m.month_tx = {}


def resize(m) -> None:
    """The population grew: extend per-person caches."""
    n = m.pop.n
    if m.coc_patient.shape[0] < n:
        k = n - m.coc_patient.shape[0]
        m.coc_patient = np.concatenate([m.coc_patient, np.zeros(k, np.float32)])
        m.coc_valid = np.concatenate([m.coc_valid, np.zeros(k, bool)])


def refresh_routing(m) -> None:
    """Per service: providers (org indices), starting shares, and the payment response of each route."""
    pr = m.p["payment_response"]
    m.routing = {}
    for s, shares in m.service_providers.items():
        provs = [(o, sh) for o, sh in shares.items() if o != "practice" and sh > 0]
        idx = np.array([m.org_by_id[o].idx for o, _ in provs], dtype=np.int64)
        base = np.array([sh for _, sh in provs], dtype=float)
        resp = np.ones(len(provs))
        for k, (o, _) in enumerate(provs):
            cid = m.net.route.get((s, o))
            c = m.net.contracts.get(cid) if cid else None
            if c is None:
                continue
            if c.payment == "tariff":
                resp[k] = 1 + pr["tariff_activity"]
            elif c.payment in ("block", "capitation", "wpap") or c.kind in ("prime", "icp"):
                resp[k] = 1 - pr["population_avoidance"]
        m.routing[s] = {"idx": idx, "share": base, "resp": resp,
                        "practice_share": shares.get("practice", 0.0)}
    n_prac = len(m.practices)
    modes = np.array([pr_.mode for pr_ in m.practices])
    m.practice_integrated = (modes == "partial") | (modes == "full")
    digital = m.p["digital"]
    share = np.full(n_prac, digital["baseline_share"], dtype=np.float32)
    if m.arr["digital_required"]:
        share[m.practice_integrated] = digital["icp_share"]
    m.practice_digital = share


def _choice_shares(m, s: str) -> np.ndarray:
    """Patient choice among eligible providers by waiting and quality (elective and outpatient)."""
    r = m.routing[s]
    if s not in CHOICE_SERVICES or len(r["idx"]) < 2:
        return r["share"]
    ch = m.p["choice"]
    q = np.array([m.orgs[i].quality for i in r["idx"]])
    cap = np.maximum(m.capacity[r["idx"], S[s]], 1e-9)
    pressure = m.backlog[r["idx"], S[s]] / cap
    alive = np.array([0.0 if m.orgs[i].failed else 1.0 for i in r["idx"]])
    logit = np.log(np.maximum(r["share"], 1e-12)) - ch["wait_sensitivity"] * pressure + ch["quality_sensitivity"] * (q - q.mean())
    w = np.exp(logit - logit.max()) * alive
    return w / w.sum() if w.sum() > 0 else r["share"]


def demand(m, t: int) -> dict:
    """This month's needs per service as (people with any, their counts), from draws shared by every
    arrangement (common random numbers): one byte per person and service of two dense 32-bit hashes,
    refined for the few candidates (see patients.poisson_screened)."""
    pop = m.pop
    month_key = lambda purpose: m.counter_key("demand", t, purpose)
    hashes = [crng.bits(month_key(j), pop.rows_spread) for j in range(DENSE_HASHES)]
    surge = 1.0 + m.shock_level("demand_surge", t)
    m.shares = {s: _choice_shares(m, s) for s in m.routing}     # once per month
    counts = {}
    for k, key in enumerate(DEMAND):
        h = hashes[k // 4]
        byte = (h >> np.uint32(8 * (k % 4)) if k % 4 else h).astype(np.uint8)   # byte k of the hashes
        factor = bound = surge / 12.0
        if key in ("outpatient", "elective"):      # volume response of the chosen providers' payment;
            # the screening bound uses the largest response, so it stays valid as choice moves shares
            resp = m.routing[key]["resp"]
            factor *= float((m.shares[key] * resp).sum())
            bound *= float(resp.max(initial=1.0))
        rate, kmax, vkey = pop.rate[key], KMAX[key], month_key(REFINE + k)
        if key == "emergency":
            counts[key] = poisson_screened(byte, pop.get_screen(key, bound * emergency_bound(m)), kmax, vkey, rate,
                                           factor, lam_at=lambda idx: emergency_multiplier(m, idx))
        elif factor == 1.0 / 12.0:
            counts[key] = poisson_levels(byte, pop.get_levels(key), vkey, rate, factor)
        else:
            counts[key] = poisson_screened(byte, pop.get_screen(key, max(bound, factor)), kmax, vkey, rate, factor)
    idx, gp = counts.pop("gp_contacts")
    d = m.practice_digital[pop.practice[idx]]
    dig = np.minimum(np.floor(gp * d + draw(m, t, 0, idx)).astype(np.uint8), gp)
    counts["gp_digital"] = (idx, dig)
    counts["gp_f2f"] = (idx, gp - dig)
    counts["community"] = counts.pop("community_contacts")
    return counts


def emergency_multiplier(m, idx: np.ndarray) -> np.ndarray:
    """Prevention, health relative to reference, continuity of care and digital substitution acting on
    the emergency risk of people `idx`."""
    pop, p = m.pop, m.p
    mult = 1.0 - pop.prevention_effect(idx)
    g = np.float32(p["demand"]["health_risk_gradient"])
    mult *= np.clip(1.0 + g * (pop.ref_health[idx] - pop.health[idx]), 0.5, 3.0)
    c = p["continuity"]
    if m.coc_patient.shape[0] >= pop.n:
        dev = np.where(m.coc_valid[idx], m.coc_patient[idx] - np.float32(c["reference"]), np.float32(0.0))
    else:
        dev = np.zeros(len(idx), np.float32)
    mult *= np.clip(1.0 - c["acs_share"] * c["effect_per_0_2"] * dev / 0.2, 0.5, 1.5)
    eff = p["digital"]["health_effect"]
    if eff:
        mult *= 1.0 + eff * m.practice_digital[pop.practice[idx]]
    return mult.astype(np.float32)


def emergency_bound(m) -> float:
    """Largest possible emergency multiplier (the clip limits above), for candidate screening."""
    eff = m.p["digital"]["health_effect"]
    return 3.0 * 1.5 * (1.0 + max(eff, 0.0))


def deliver(m, t: int, counts: dict) -> None:
    """Route episodes, apply capacity, record transitions, contact history and health."""
    pop, p = m.pop, m.p
    n_orgs = len(m.orgs)
    units = np.zeros((n_orgs, len(SERVICES)))
    window = pop.contacts
    window.begin_month(t)            # contacts of 12 months ago leave the window
    chosen: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    extra_cost = np.zeros(n_orgs)

    # general practice: the registered practice, with a share at the GP federation (extended access)
    n_prac = len(m.practices)
    gp_idx = counts["gp_f2f"][0]                   # the same people for both GP kinds
    own_all = np.zeros(len(gp_idx), np.uint8)
    fed_all = np.zeros(len(gp_idx), np.uint8)
    prac = pop.practice[gp_idx]
    for j, s in enumerate(("gp_f2f", "gp_digital")):
        idx, k = counts[s]
        r = m.routing[s]
        fed = np.zeros(len(idx), np.uint8)
        if len(r["idx"]):
            g = np.float32(1.0 - r["practice_share"])
            fed = np.minimum(np.floor(k * g + draw(m, t, 1 + j, idx)).astype(np.uint8), k)
            units[r["idx"][0], S[s]] += fed.sum()
            fed_all += fed
        own = k - fed
        units[m.practice_idx, S[s]] += np.bincount(prac, weights=own, minlength=n_prac)
        own_all += own
    window.add(0, gp_idx, own_all)
    if len(m.routing["gp_f2f"]["idx"]):
        window.add(int(m.slot_of[m.routing["gp_f2f"]["idx"][0]]), gp_idx, fed_all, sparse=True)

    # other services: provider per person-month by (choice-adjusted) shares
    disc = p["transitions"]
    em_idx, em_k = counts["emergency"]
    band = pop.band[em_idx]
    u_d = draw(m, t, 3, em_idx)
    pc = np.asarray(disc["discharge_to_community"], np.float32)[band]
    ps = np.asarray(disc["discharge_to_social_care"], np.float32)[band]
    to_comm = em_idx[u_d < pc]
    to_sc = em_idx[(u_d >= pc) & (u_d < pc + ps)]
    add = {"community": (to_comm, int(disc["community_contacts_per_discharge"])),
           "social_care": (to_sc, int(disc["social_care_weeks_per_discharge"]))}
    for j, s in enumerate(("community", "outpatient", "elective", "emergency", "mental_health", "social_care")):
        idx, kk = counts[s]
        r = m.routing[s]
        shares = m.shares[s]
        cum = np.cumsum(shares)
        cum[-1] = 1.0 + 1e-6
        if len(shares) == 1:                        # one provider: no choice to draw
            prov = np.full(len(idx), r["idx"][0])
            units[r["idx"][0], S[s]] += kk.sum()
            window.add(int(m.slot_of[r["idx"][0]]), idx, kk)
        else:
            prov = r["idx"][np.searchsorted(cum, draw(m, t, 10 + j, idx), side="right")]
            units[:, S[s]] += np.bincount(prov, weights=kk, minlength=n_orgs)
            window.add(m.slot_of[prov], idx, kk)
        chosen[s] = (idx, prov, kk)
        if s in add:  # episodes that follow a discharge
            didx, per = add[s]
            dpick = np.searchsorted(cum, draw(m, t, 20 + j, didx), side="right")
            dprov = r["idx"][dpick]
            units[:, S[s]] += np.bincount(dprov, minlength=n_orgs) * per
            window.add(m.slot_of[dprov], didx, min(per, 4))
            chosen["disc_" + s] = (didx, dprov, np.full(len(didx), per))

    # capacity: elective and outpatient wait; emergency overflow costs more
    wait_frac = {}
    for s in CHOICE_SERVICES:
        col = S[s]
        demand_ = units[:, col] + m.backlog[:, col]
        served = np.minimum(demand_, m.capacity[:, col])
        m.backlog[:, col] = demand_ - served
        units[:, col] = served
        wait_frac[s] = np.divide(m.backlog[:, col], demand_, out=np.zeros(n_orgs), where=demand_ > 0)
    col = S["emergency"]
    over = np.maximum(units[:, col] - m.capacity[:, col], 0)
    extra_cost += over * (p["costs"]["overflow_cost_ratio"] - 1) * m.var_unit[:, col]

    # care transitions between organisations
    def prac_org(people: np.ndarray) -> np.ndarray:
        return m.practice_idx[pop.practice[people]]
    a_list, b_list, who, kind = [], [], [], []
    op_idx, op_prov, _ = chosen["outpatient"]
    a_list.append(prac_org(op_idx)); b_list.append(op_prov); who.append(op_idx); kind.append(np.zeros(len(op_idx), np.int8))
    el_idx, el_prov, _ = chosen["elective"]
    pos = np.minimum(np.searchsorted(op_idx, el_idx), max(len(op_idx) - 1, 0))   # both sorted
    had_op = (op_idx[pos] == el_idx) if len(op_idx) else np.zeros(len(el_idx), bool)
    src = np.where(had_op, op_prov[pos] if len(op_idx) else 0, prac_org(el_idx))
    a_list.append(src); b_list.append(el_prov); who.append(el_idx); kind.append(np.zeros(len(el_idx), np.int8))
    mh_idx, mh_prov, _ = chosen["mental_health"]
    ref = draw(m, t, 30, mh_idx) < disc["gp_to_mental_health_referral"]
    a_list.append(prac_org(mh_idx[ref])); b_list.append(mh_prov[ref]); who.append(mh_idx[ref]); kind.append(np.zeros(int(ref.sum()), np.int8))
    acute = m.routing["emergency"]["idx"][0]
    for s in ("community", "social_care"):
        didx, dprov, _ = chosen["disc_" + s]
        a_list.append(np.full(len(didx), acute)); b_list.append(dprov); who.append(didx); kind.append(np.ones(len(didx), np.int8))
    a = np.concatenate(a_list); b = np.concatenate(b_list); w = np.concatenate(who); kd = np.concatenate(kind)
    ent = m.entity
    handoff = ent[a] != ent[b]
    cov = m.coverage[a, b] * handoff
    n_handoffs = float(handoff.sum())
    integrated = float(cov.sum())
    unint = handoff * (1.0 - cov)
    # uncovered discharges wait in hospital; any uncovered hand-off costs a little health
    extra_cost[acute] += float((unint * kd).sum()) * p["costs"]["delayed_discharge_days"] * p["costs"]["excess_bed_day_cost"]
    m.record("handoffs", t, n_handoffs)
    m.record("integrated", t, integrated)
    m.record("admissions", t, float(em_k.sum()))

    # health: recovery towards baseline (raised by prevention), losses from admissions, waits and hand-offs
    h = pop.health
    hp = p["health"]
    r_rec = np.float32(hp["recovery_rate"])
    step = np.subtract(pop.base_health, h)       # recovery towards baseline ...
    step *= r_rec
    h += step
    live = pop.prev_live                          # ... raised by prevention where it has reached
    if len(live):
        base = pop.base_health[live]
        gain = np.float32(hp["prevention_gain"] / max(p["prevention"]["effect_max"], 1e-9))
        h[live] += r_rec * (np.minimum(base + gain * pop.prevention_effect(live), 1.0) - base)
    h[em_idx] -= np.float32(hp["admission_loss"]) * em_k
    wl = p["costs"]["waiting_health_loss"]
    for s in CHOICE_SERVICES:
        idx, prov, _ = chosen[s]
        h[idx] -= np.float32(wl) * wait_frac[s][prov].astype(np.float32)
    np.subtract.at(h, w, (hp["handoff_loss"] * unint).astype(np.float32))
    avoid = m.p["payment_response"]["rationing_health_loss"]
    for s in CHOICE_SERVICES:
        r = m.routing[s]
        gap = float(((1.0 - r["resp"]).clip(0) * m.shares[s]).sum())
        if gap > 0:
            idx, _, _ = chosen[s]
            h[idx] -= np.float32(avoid * gap)
    np.clip(h, 0.0, 1.0, out=h)

    m.units = units
    m.extra_cost = extra_cost
