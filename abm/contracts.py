"""Contracts and the generic builder that turns an arrangement definition into a contract network.

An arrangement is data (configs/arrangements/*.yaml). One builder reads it: who holds the population
contract (if anyone), which services it covers, how it pays the providers it subcontracts, whether an
alliance pools risk, and how each GP practice takes part. No code here branches on an arrangement's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from .params import SERVICES

COORDINATING = ("alliance", "prime", "icp", "subcontract", "integration_agreement", "salaried")


@dataclass
class Contract:
    """One agreement, payer -> payee. Values are £ a year at full population scale times `scale`."""
    cid: str
    kind: str
    payment: str
    payer: str
    payee: str
    value: float = 0.0
    start: int = 0
    end: int | None = None
    status: str = "active"
    services: tuple[str, ...] = ()
    price_factor: float = 1.0        # tariff contracts: price = national tariff x price_factor
    per_capita: float = 0.0          # capitation/WPAP/allocation: £ per registered person per year
    gp_per_head: float = 0.0         # WPAP: £ per patient of fully integrated practices
    pass_through: float = 0.0        # share of the payee's variance on this contract the payer absorbs at year end
    risk_terms: dict | None = None
    share: float = 0.0               # alliance: agreed share of pooled variance
    trust: float = 0.6               # relational trust between the parties (partnership contracts)
    fail_years: int = 0              # consecutive years failing quality review
    procured: bool = False
    note: str = ""
    base_value: float = 0.0          # value at the start of its term, before yearly uplifts
    year_paid: float = 0.0
    settled_ytd: float = 0.0         # settlement paid on this contract so far this year           # paid under this contract so far this year (for settlement)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def edge_attrs(self) -> dict:
        return {"cid": self.cid, "kind": self.kind, "payment": self.payment, "value": float(self.value),
                "start": int(self.start), "end": -1 if self.end is None else int(self.end), "status": self.status,
                "services": ",".join(self.services), "pass_through": float(self.pass_through),
                "share": float(self.share), "trust": float(self.trust)}


@dataclass
class Network:
    """The built network: contracts by id plus lookup tables the monthly loop uses."""
    contracts: dict[str, Contract]
    holder: str | None
    holder_contracts: list[str]                     # the holder's population contract(s), payer -> holder
    route: dict[tuple[str, str], str]               # (service, provider id) -> funding contract id
    practice_route: dict[str, str]                  # practice id -> contract funding its GP services
    practice_mode: dict[str, str]                   # practice id -> outside / partial / full
    alliance_members: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)   # providers the commissioner refused as subcontractors


def _add(contracts: dict, c: Contract) -> Contract:
    contracts[c.cid] = c
    return c


def build_network(economy: dict, arrangement: dict, params: dict, spend: dict[str, dict[str, float]],
                  practice_modes: dict[str, str], practice_salaried: dict[str, bool], population: float,
                  practice_lists: dict[str, float], scale: float = 1.0) -> Network:
    """Build every contract an arrangement implies.

    `spend[org][service]` is the current (baseline) yearly spend on each provider's services at
    tariff prices; contract values are set from it, as WPAP is set from current spend (002 §23).
    """
    orgs = {o["id"]: o for o in economy["organisations"]}
    by_kind: dict[str, list[str]] = {}
    for o in economy["organisations"]:
        by_kind.setdefault(o["kind"], []).append(o["id"])
    funder = by_kind["funder"][0]
    ccg = by_kind["commissioner"][0]
    comm_of = economy["commissioned_by"]["value"]
    sp = economy["service_providers"]["value"]
    p = params
    cap = p["funding"]["gp_capitation"]

    holder = None
    if arrangement["holder"]:
        holder = arrangement["holder"]["org"] or arrangement["holder"]["new"]["id"]
    hc = arrangement["contract"]
    scope = set(hc["scope"]) if hc else set()
    pooled_la = arrangement["la_services"] == "pooled"
    vf = hc["value_factor"] if hc else 1.0
    fee = hc["management_fee"] if hc else 0.0
    years = hc["contract_years"] if hc else None
    pt = arrangement["pass_through"]

    def in_holder_scope(s: str) -> bool:
        if s not in scope:
            return False
        return comm_of[s] == ccg or pooled_la

    # subcontracting may need the commissioner's permission (001): refused below a quality bar, the
    # provider's services stay on a direct contract and out of the holder's budget
    need_permission = arrangement.get("subcontract_permission", False)
    bar = p["oversight"]["permission_quality"]
    refused = {oid for oid, o in orgs.items() if need_permission and oid != holder and o.get("quality", 1.0) < bar}

    contracts: dict[str, Contract] = {}
    route: dict[tuple[str, str], str] = {}
    roles: dict[str, str] = {}
    roles[funder] = "funder"
    for kind in ("commissioner", "local_authority"):
        for oid in by_kind.get(kind, []):
            roles[oid] = "commissioner"
            _add(contracts, Contract(f"alloc:{oid}", "allocation", "allocation", funder, oid))

    # providers' services: subcontracted by the holder, delivered by the holder, or contracted directly
    for oid, o in orgs.items():
        if o["kind"] in ("funder", "commissioner", "local_authority"):
            continue
        services = [s for s in SERVICES if oid in sp[s]]
        roles.setdefault(oid, "provider")
        inside = [s for s in services if holder and in_holder_scope(s) and oid not in refused]
        outside = [s for s in services if s not in inside]
        if inside and oid != holder:
            pay = arrangement["subcontract_payment"].get(o["kind"], "block")
            val = sum(spend[oid][s] for s in inside) * vf * (1 - fee)
            c = _add(contracts, Contract(f"sub:{oid}", "subcontract", pay, holder, oid, value=val,
                                         end=None if years is None else 12 * years, services=tuple(inside),
                                         price_factor=vf * (1 - fee), pass_through=pt if pay != "tariff" else 0.0,
                                         trust=p["trust"]["initial"]))
            roles[oid] = "subcontractor"
            for s in inside:
                route[(s, oid)] = c.cid
        by_payer: dict[str, list[str]] = {}
        for s in outside:
            by_payer.setdefault(comm_of[s], []).append(s)
        for payer, ss in by_payer.items():
            pay = arrangement["standard_payment"].get(o["kind"], "block")
            val = sum(spend[oid][s] for s in ss)
            c = _add(contracts, Contract(f"std:{payer}:{oid}", "standard", pay, payer, oid, value=val,
                                         services=tuple(ss)))
            for s in ss:
                route[(s, oid)] = c.cid

    # the holder's population contract(s)
    holder_contracts: list[str] = []
    if holder:
        roles[holder] = "lead"
        payers: dict[str, list[str]] = {}
        for s in scope:
            if in_holder_scope(s):
                payers.setdefault(comm_of[s], []).append(s)
        for payer, ss in sorted(payers.items()):
            total = sum(spend[org].get(s, 0.0) for org in spend for s in ss if org not in refused) * vf
            c = _add(contracts, Contract(f"{hc['kind']}:{payer}", hc["kind"], hc["payment"], payer, holder,
                                         value=total, end=12 * years, services=tuple(sorted(ss, key=SERVICES.index)),
                                         per_capita=total / population, risk_terms=hc["risk_terms"],
                                         trust=p["trust"]["initial"]))
            holder_contracts.append(c.cid)
            for s in ss:
                if holder in sp[s]:
                    route[(s, holder)] = c.cid

    # alliance: one agreement binding the commissioner and the members; members keep their contracts
    members: list[str] = []
    if arrangement["alliance"]:
        al = arrangement["alliance"]
        members = list(al["members"])
        for m in members:
            _add(contracts, Contract(f"alliance:{m}", "alliance", "none", ccg, m, end=12 * al["contract_years"],
                                     share=al["risk_shares"].get(m, 0.0), trust=p["trust"]["initial"]))
            roles[m] = "member"

    # GP practices: GMS/PMS with the commissioner, plus an Integration Agreement, or inside the ICP
    pt_terms = arrangement["practices"]
    practice_route: dict[str, str] = {}
    gp_into_holder = 0.0
    for pr in economy["practices"]["list"]:
        pid = pr["id"]
        roles[pid] = "practice"
        lst = practice_lists[pid]
        mode = practice_modes.get(pid, "outside")
        gms = _add(contracts, Contract(f"gms:{pid}", "gms_pms", "capitation", ccg, pid, value=cap * lst,
                                       per_capita=cap, services=("gp_f2f", "gp_digital"), note=pr["contract"]))
        practice_route[pid] = gms.cid
        if mode == "partial":
            f = pt_terms["integration_fee_per_head"]
            _add(contracts, Contract(f"ia:{pid}", "integration_agreement", "fee", holder, pid, value=f * lst,
                                     per_capita=f, trust=p["trust"]["initial"]))
        elif mode == "full":
            gms.status = "suspended"
            per_head = cap * (1 + pt_terms["full_uplift"])
            gp_into_holder += per_head * lst
            if practice_salaried.get(pid, False):
                c = Contract(f"sal:{pid}", "salaried", "block", holder, pid, value=spend[pid]["gp_total_cost"],
                             services=("gp_f2f", "gp_digital"), pass_through=1.0, trust=p["trust"]["initial"])
            else:
                c = Contract(f"sub:{pid}", "subcontract", "capitation", holder, pid, value=per_head * lst,
                             per_capita=per_head, services=("gp_f2f", "gp_digital"), trust=p["trust"]["initial"])
            _add(contracts, c)
            practice_route[pid] = c.cid
    if gp_into_holder and holder_contracts:
        main = contracts[f"{hc['kind']}:{ccg}"]
        main.value += gp_into_holder
        main.gp_per_head = cap * (1 + pt_terms["full_uplift"])
        main.services = tuple(sorted(set(main.services) | {"gp_f2f", "gp_digital"}, key=SERVICES.index))

    return Network(contracts, holder, holder_contracts, route, practice_route, practice_modes, members, roles,
                   refused=sorted(refused))


def to_graph(contracts: dict[str, Contract], nodes: dict[str, dict]) -> nx.MultiDiGraph:
    """The contract network: nodes are organisations, edges run payer -> payee keyed by contract id."""
    g = nx.MultiDiGraph()
    for oid, attrs in nodes.items():
        g.add_node(oid, **attrs)
    for c in contracts.values():
        g.add_edge(c.payer, c.payee, key=c.cid, **c.edge_attrs())
    return g


def write_graphml(g: nx.MultiDiGraph, path: str | Path) -> None:
    """GraphML keeps only scalar attributes: convert anything else to text."""
    h = nx.MultiDiGraph()
    for n, a in g.nodes(data=True):
        h.add_node(n, **{k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in a.items()})
    for u, v, k, a in g.edges(keys=True, data=True):
        h.add_edge(u, v, key=k, **{kk: (vv if isinstance(vv, (str, int, float, bool)) else str(vv)) for kk, vv in a.items()})
    nx.write_graphml(h, str(path))
