"""The contract network: one `networkx.MultiDiGraph` (payer -> payee, keyed by contract id) whose edge
attribute dicts *are* the contracts, a small API to change it, and the generic builder that turns an
arrangement definition into it.

There is no second copy to keep in step: a `Contract` is the attribute dict of its edge, so
`model.contracts` (the graph) is always current. An arrangement is data (configs/arrangements/*.yaml):
one builder reads it (who holds the population contract, which services it covers, how it pays the
providers it subcontracts, whether an alliance pools risk, how each GP practice takes part). Nothing
here branches on an arrangement's name.
"""
from __future__ import annotations

from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterator

import networkx as nx
import numpy as np

from .kinds import CONTRACT_KINDS, ORG_KINDS, PAYMENT_KINDS, ContractKind, PaymentKind
from .params import SERVICES

# edge attributes every contract carries (INTERFACE names first), with their defaults
FIELDS: dict[str, object] = {
    "cid": "", "kind": "", "payment": "", "payer": "", "payee": "",
    "value": 0.0,           # £ a year at full population scale times `scale`
    "start": 0, "end": -1,  # months; end -1 = open-ended
    "status": "active",     # active, suspended, terminated
    "services": "",         # comma-separated service keys
    "pass_through": 0.0,    # share of the payee's variance on this contract the payer absorbs
    "share": 0.0,           # alliance: agreed share of pooled variance
    "trust": 0.6,           # relational trust between the parties (coordinating contracts)
    "maturity": 1.0,        # alliance: how far its joint working has developed (0-1)
    "price_factor": 1.0,    # tariff contracts: price = national tariff x price_factor
    "per_capita": 0.0,      # capitation/WPAP/allocation: £ per registered person per year
    "gp_per_head": 0.0,     # WPAP: £ per patient of fully integrated practices
    "risk_terms": None,     # holder contracts: corridor / gain-loss terms
    "procured": False,
    "note": "",
    "base_value": 0.0,      # value at the start of its term, before yearly uplifts
    "outcome_share": 0.0,   # holder contracts: share of value paid at year end on measured outcomes
    "outcome_terms": None,  # the measures, weights, targets and floors
    "places": "",           # the places whose people it pays for (comma-separated ids; empty = all)
    "cost_floor": 0.0,      # subcontracts: the provider's cost of the services (its reservation price)
    "holder_margin": 0.0,   # subcontracts: what the holder's budget for them leaves after price and VAT
    "vat_expected": 0.0,    # subcontracts: irrecoverable VAT the holder expects to pay on the price
}


@lru_cache(maxsize=512)
def _split(services: str) -> tuple[str, ...]:
    return tuple(services.split(",")) if services else ()


class Contract(dict):
    """One agreement, payer -> payee: the attribute dict of its edge, with attribute access.

    `end` reads None for an open-ended contract (stored as -1 on the edge) and `services` reads as a
    tuple (stored comma-separated, as GraphML needs scalars)."""
    __slots__ = ()

    def __init__(self, *args, **kw):
        super().__init__(FIELDS)
        self.update(*args, **kw)

    def __setattr__(self, name, value):
        prop = type(self).__dict__.get(name)
        if isinstance(prop, property):
            prop.fset(self, value)
        elif name in FIELDS:
            self[name] = value
        else:
            raise AttributeError(f"a contract has no field {name!r}")

    def update(self, *args, **kw):
        d = dict(*args, **kw)
        if "end" in d and d["end"] is None:
            d["end"] = -1
        if "services" in d and not isinstance(d["services"], str):
            d["services"] = ",".join(d["services"])
        if "value" in d:
            d["value"] = float(d["value"])
        super().update(d)

    # typed views of the stored values
    @property
    def end(self) -> int | None:
        e = self["end"]
        return None if e < 0 else e

    @end.setter
    def end(self, value) -> None:
        self["end"] = -1 if value is None else int(value)

    @property
    def services(self) -> tuple[str, ...]:
        return _split(self["services"])

    @services.setter
    def services(self, value) -> None:
        self["services"] = value if isinstance(value, str) else ",".join(value)

    @property
    def value(self) -> float:
        return self["value"]

    @value.setter
    def value(self, v) -> None:
        self["value"] = float(v)

    @property
    def active(self) -> bool:
        return self["status"] == "active"

    @property
    def info(self) -> ContractKind:
        return CONTRACT_KINDS[self["kind"]]

    @property
    def pay(self) -> PaymentKind:
        return PAYMENT_KINDS[self["payment"]]


def _field(name: str) -> property:
    def fset(self, value):
        self[name] = value
    return property(itemgetter(name), fset, doc=f"the contract's `{name}`")


for _name in FIELDS:
    if _name not in Contract.__dict__:
        setattr(Contract, _name, _field(_name))


def new_contract(cid: str, kind: str, payment: str, payer: str, payee: str, **fields) -> Contract:
    return Contract(cid=cid, kind=kind, payment=payment, payer=payer, payee=payee, **fields)


class ContractGraph(nx.MultiDiGraph):
    """A MultiDiGraph whose edge attribute dicts are `Contract`s."""
    edge_attr_dict_factory = Contract


class ContractNetwork:
    """The contract network and the few ways it changes: add, terminate, suspend, reactivate, hand over
    to a successor; queries by payer, payee, kind and status. Also the routing the builder decides:
    which contract funds each (service, provider) and each practice's GP services, and the holder."""

    def __init__(self) -> None:
        self.graph = ContractGraph()
        self._by_id: dict[str, Contract] = {}     # insertion order; the same objects as the edges
        self.holder: str | None = None
        self.holder_contracts: list[str] = []      # the holder's population contract(s)
        self.route: dict[tuple[str, str], str] = {}    # (service, provider id) -> funding contract id
        self.practice_route: dict[str, str] = {}       # practice id -> contract funding its GP services
        self.refused: list[str] = []               # providers the commissioner refused as subcontractors
        self.version = 0                           # bumped on every structural change
        self._counts: dict = {}

    # ---------------------------------------------------------------- nodes
    def add_node(self, oid: str, kind: str, nhs_body: bool, label: str, budget: float = 0.0,
                 role: str = "provider") -> None:
        self.graph.add_node(oid, kind=kind, role=role, nhs_body=bool(nhs_body), label=label,
                            budget=float(budget), failed=False)

    def role(self, oid: str) -> str:
        node = self.graph.nodes.get(oid)
        return node.get("role", "provider") if node else "provider"

    def set_role(self, oid: str, role: str) -> None:
        if oid not in self.graph:
            self.graph.add_node(oid)
        self.graph.nodes[oid]["role"] = role

    def mark_failed(self, oid: str) -> None:
        self.graph.nodes[oid]["failed"] = True
        self.version += 1

    # ---------------------------------------------------------------- contracts
    def add(self, c: Contract) -> Contract:
        """Add a contract as an edge; returns the edge's own Contract (use it, not the argument)."""
        if c.cid in self._by_id:
            raise ValueError(f"duplicate contract id {c.cid!r}")
        self.graph.add_edge(c.payer, c.payee, key=c.cid, **c)
        edge = self.graph.edges[c.payer, c.payee, c.cid]
        self._by_id[c.cid] = edge
        self.version += 1
        return edge

    def __getitem__(self, cid: str) -> Contract:
        return self._by_id[cid]

    def get(self, cid: str | None) -> Contract | None:
        return self._by_id.get(cid) if cid else None

    def __contains__(self, cid: str) -> bool:
        return cid in self._by_id

    def __iter__(self) -> Iterator[Contract]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def active(self) -> Iterator[Contract]:
        return (c for c in self._by_id.values() if c["status"] == "active")

    def query(self, payer: str | None = None, payee: str | None = None, kind: str | None = None,
              status: str | None = "active", where: Callable[[Contract], bool] | None = None) -> list[Contract]:
        """Contracts matching every given criterion (status None = any), in the order they were made."""
        return [c for c in self._by_id.values()
                if (payer is None or c["payer"] == payer) and (payee is None or c["payee"] == payee)
                and (kind is None or c["kind"] == kind) and (status is None or c["status"] == status)
                and (where is None or where(c))]

    def terminate(self, c: Contract, t: int) -> None:
        c["status"], c["end"] = "terminated", int(t)
        self.version += 1

    def suspend(self, c: Contract) -> None:
        c["status"] = "suspended"
        self.version += 1

    def reactivate(self, c: Contract, t: int) -> None:
        c["status"], c["start"] = "active", int(t)
        self.version += 1

    def hand_over(self, c: Contract, t: int, payer: str | None = None, payee: str | None = None,
                  **changes) -> Contract:
        """End `c` and start the same terms between new parties (a successor after a failure): routes,
        practice routes and the holder's contracts that pointed at `c` now point at the new contract."""
        new = Contract(c)
        new.update(cid=f"{c.cid}~{t}", payer=payer or c.payer, payee=payee or c.payee, start=int(t),
                   status="active", procured=False, base_value=0.0)
        new.update(changes)
        self.terminate(c, t)
        new = self.add(new)
        for s in c.services:
            if self.route.get((s, c.payee)) == c.cid:
                self.route[(s, new.payee)] = new.cid
        if self.practice_route.get(c.payee) == c.cid:
            self.practice_route[c.payee] = new.cid
        if c.cid in self.holder_contracts:
            self.holder_contracts[self.holder_contracts.index(c.cid)] = new.cid
        return new

    def fund_practice(self, pid: str, c: Contract) -> None:
        """`c` now funds practice `pid`'s GP services."""
        self.practice_route[pid] = c.cid
        self.version += 1

    def practice_contract(self, pid: str) -> Contract:
        return self._by_id[self.practice_route[pid]]

    def appoint_holder(self, oid: str) -> None:
        """`oid` holds the population contract(s) (at build, or a successor taking them over)."""
        self.holder = oid
        self.set_role(oid, "lead")
        self.version += 1

    def release_holder(self) -> None:
        """The holder has gone: its population contracts are no longer anyone's; it is a plain provider."""
        if self.holder is not None:
            self.set_role(self.holder, "provider")
        self.holder = None
        self.holder_contracts = []
        self.version += 1

    def funding(self, service: str, oid: str) -> Contract | None:
        """The contract that funds `service` at provider `oid` (None if none)."""
        return self.get(self.route.get((service, oid)))

    def set_route(self, services, oid: str, cid: str) -> None:
        for s in services:
            self.route[(s, oid)] = cid
        self.version += 1

    def drop_routes(self, oid: str) -> None:
        for key in [k for k in self.route if k[1] == oid]:
            self.route.pop(key)
        self.version += 1

    def members(self) -> list[Contract]:
        """Active agreement contracts (the alliance's members)."""
        return [c for c in self.active() if CONTRACT_KINDS[c["kind"]].agreement]

    def learn_trust(self, outcome: Callable[[str], float], rho: float, shared: float | None = None) -> None:
        """Relational trust on every coordinating contract learns from the payee's outcome this year
        (0-1, 0.5 neutral), asymmetrically: good outcomes only raise it, bad ones only lower it. Partners
        in an agreement (the alliance) learn from their shared result (`shared`), not each one's own."""
        for c in self.active():
            info = CONTRACT_KINDS[c["kind"]]
            if not info.coordinating:
                continue
            o = shared if info.agreement and shared is not None else outcome(c["payee"])
            blended = rho * o + (1 - rho) * c["trust"]
            c["trust"] = float(max(c["trust"], blended) if o >= 0.5 else min(c["trust"], blended))

    def develop_alliance(self, tr: dict, governance: float) -> None:
        """Year end: an alliance's joint working develops towards full coordination over
        `alliance_maturity_years` at the reference trust (`maturity_reference_trust`, a fixed level, so a
        study of initial trust does not move its own yardstick) and governance spend, faster with more of
        either, and erodes when trust falls below `trust_floor`."""
        members = self.members()
        if not members:
            return
        trust = float(np.mean([c["trust"] for c in members]))
        mat = members[0]["maturity"]
        ref = max(tr["maturity_reference_trust"], tr["trust_floor"] + 0.05)
        if trust >= tr["trust_floor"]:
            pace = min((trust - tr["trust_floor"]) / max(ref - tr["trust_floor"], 1e-9), 2.0) * governance ** 0.5
            mat = min(1.0, mat + pace / tr["alliance_maturity_years"])
        else:
            mat = max(0.0, mat - (tr["trust_floor"] - trust) / max(tr["trust_floor"], 1e-9))
        for c in members:
            c["maturity"] = mat

    def count_contracts(self, payers: set[str] | None = None) -> int:
        """Contracts in force (one agreement over many parties counts once), optionally by payer."""
        key = (self.version, None if payers is None else frozenset(payers))
        cached = self._counts.get(key)
        if cached is not None:
            return cached
        ids = set()
        for c in self.active():
            info = CONTRACT_KINDS[c["kind"]]
            if info.funding or not info.counted or (payers is not None and c["payer"] not in payers):
                continue
            ids.add(c["kind"] if info.agreement else c["cid"])
        if len(self._counts) > 8:
            self._counts.clear()
        self._counts[key] = len(ids)
        return len(ids)


# --------------------------------------------------------------------------- the builder
def build_network(net: ContractNetwork, economy: dict, arrangement: dict, params: dict,
                  spend: dict[str, dict[str, float]], practice_modes: dict[str, str],
                  practice_salaried: dict[str, bool], population: float, practice_lists: dict[str, float],
                  permits: Callable[[str], bool] | None = None,
                  cost_floor: Callable[[str, list[str]], float] | None = None,
                  holder_vat: float = 0.0, spend_place: list[dict[str, dict[str, float]]] | None = None,
                  place_population: list[float] | None = None) -> ContractNetwork:
    """Add every contract an arrangement implies to `net` (whose nodes may already exist).

    With several places, each place's commissioner (and council) holds its own contracts for its
    people (`spend_place[q]`, the spend on place q's people); a holder's contract spans the places, one
    population contract per payer; a contract's `places` lists the places it pays for.

    `spend[org][service]` is the current (baseline) yearly spend on each provider's services at
    tariff prices; contract values are set from it, as the Whole Population Annual Payment is set from
    current spend (NHS England, Draft ICP Contract, 2018). `permits(org)` is the commissioner's
    decision to allow a provider as a subcontractor where the arrangement needs permission.

    Subcontract prices are negotiated: the holder can pay at most its budget for the services (value
    factor x current spend) less its management fee and the irrecoverable VAT on the price
    (`holder_vat`, a share of the price); the provider accepts no less than its cost (`cost_floor`). Where
    the budget leaves room the provider gets `subcontract.provider_bargaining_share` of it; where it does
    not, the provider is paid its cost and the holder bears the gap.
    """
    orgs = {o["id"]: o for o in economy["organisations"]}
    by_side: dict[str, list[str]] = {}
    for o in economy["organisations"]:
        by_side.setdefault(ORG_KINDS[o["kind"]].side, []).append(o["id"])
    funder = by_side["funder"][0]
    ccg = next(o["id"] for o in economy["organisations"] if o["kind"] == "commissioner")
    comm_of = economy["commissioned_by"]["value"]
    places = economy["places"]
    n_places = len(places)
    spend_place = spend_place or [spend]
    place_population = place_population or [population]
    kind_of = {o["id"]: o["kind"] for o in economy["organisations"]}

    def payer_of(s: str, q: int) -> str:
        who = comm_of[s]
        return places[q][who] if who in ("commissioner", "local_authority") else who

    def place_list(qs) -> str:
        return ",".join(places[q]["id"] for q in sorted(qs)) if n_places > 1 else ""

    lead_place = {pr["id"]: next(q for q, pl in enumerate(places) if pl["id"] == pr["place"])
                  for pr in economy["practices"]["list"]}
    sp = economy["service_providers"]["value"]
    p = params
    cap = p["funding"]["gp_capitation"]
    trust0 = p["trust"]["initial"]

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
        who = comm_of[s]
        return who == "commissioner" or kind_of.get(who) == "commissioner" or pooled_la

    # subcontracting may need the commissioner's permission: refused, the provider's services stay on
    # a direct contract and out of the holder's budget
    need_permission = arrangement.get("subcontract_permission", False)
    refused = {oid for oid in orgs if need_permission and oid != holder and permits is not None and not permits(oid)}

    net.set_role(funder, "funder")
    for oid in by_side.get("commissioner", []):
        net.set_role(oid, "commissioner")
        net.add(new_contract(f"alloc:{oid}", "allocation", "allocation", funder, oid))

    # providers' services: subcontracted by the holder, delivered by the holder, or contracted directly
    for oid, o in orgs.items():
        if ORG_KINDS[o["kind"]].side in ("funder", "commissioner"):
            continue
        services = [s for s in SERVICES if oid in sp[s]]
        net.set_role(oid, "provider")
        if o.get("outside_network"):
            # another system's provider: no contract with it; whoever holds the budget pays for the
            # activity its patients choose there at national tariff (non-contract activity)
            by_payer: dict[str, dict] = {}
            for s in services:
                for q in range(n_places):
                    payer = holder if holder and in_holder_scope(s) else payer_of(s, q)
                    d = by_payer.setdefault(payer, {"services": [], "places": set()})
                    if s not in d["services"]:
                        d["services"].append(s)
                    d["places"].add(q)
            for payer, d in by_payer.items():
                c = net.add(new_contract(f"nca:{payer}:{oid}", "non_contract", "tariff", payer, oid,
                                         value=sum(spend_place[q].get(oid, {}).get(s, 0.0) for q in d["places"]
                                                   for s in d["services"]),
                                         services=d["services"], places=place_list(d["places"]) if payer != holder else ""))
                net.set_route(d["services"], oid, c.cid)
            continue
        inside = [s for s in services if holder and in_holder_scope(s) and oid not in refused]
        outside = [s for s in services if s not in inside]
        if inside and oid != holder:
            pay = arrangement["subcontract_payment"].get(o["kind"], "block")
            current = sum(spend[oid][s] for s in inside)
            budget = current * vf
            ceiling = budget * (1 - fee) / (1 + holder_vat)
            floor = cost_floor(oid, inside) if cost_floor else ceiling
            beta = p["subcontract"]["provider_bargaining_share"]
            price = floor + beta * (ceiling - floor) if ceiling >= floor else floor
            c = net.add(new_contract(f"sub:{oid}", "subcontract", pay, holder, oid, value=price,
                                     end=None if years is None else 12 * years, services=inside,
                                     price_factor=price / current if current > 0 else 1.0,
                                     pass_through=pt if not PAYMENT_KINDS[pay].per_activity else 0.0,
                                     trust=trust0, cost_floor=floor, vat_expected=price * holder_vat,
                                     holder_margin=budget - price * (1 + holder_vat)))
            net.set_role(oid, "subcontractor")
            net.set_route(inside, oid, c.cid)
        by_payer: dict[str, dict] = {}
        for s in outside:
            for q in range(n_places):
                if spend_place[q].get(oid, {}).get(s, 0.0) > 0 or n_places == 1:
                    d = by_payer.setdefault(payer_of(s, q), {"services": [], "places": set()})
                    if s not in d["services"]:
                        d["services"].append(s)
                    d["places"].add(q)
        for payer, d in by_payer.items():
            ss, qs = d["services"], d["places"]
            pay = arrangement["standard_payment"].get(o["kind"], "block")
            val = sum(spend_place[q][oid].get(s, 0.0) for s in ss for q in sorted(qs)
                      if payer_of(s, q) == payer) if n_places > 1 else sum(spend[oid][s] for s in ss)
            c = net.add(new_contract(f"std:{payer}:{oid}", "standard", pay, payer, oid, value=val, services=ss,
                                     places=place_list(qs)))
            net.set_route(ss, oid, c.cid)

    # the holder's population contract(s)
    if holder:
        net.appoint_holder(holder)
        payers: dict[str, dict] = {}
        for s in scope:
            if in_holder_scope(s):
                for q in range(n_places):
                    d = payers.setdefault(payer_of(s, q), {"services": [], "places": set()})
                    if s not in d["services"]:
                        d["services"].append(s)
                    d["places"].add(q)
        for payer, d in sorted(payers.items()):
            ss, qs = d["services"], sorted(d["places"])
            if n_places == 1:
                total = sum(spend[org].get(s, 0.0) for org in spend for s in ss if org not in refused) * vf
            else:
                total = sum(spend_place[q][org].get(s, 0.0) for q in qs for org in spend_place[q] for s in ss
                            if org not in refused and payer_of(s, q) == payer) * vf
            heads = sum(place_population[q] for q in qs)
            c = net.add(new_contract(f"{hc['kind']}:{payer}", hc["kind"], hc["payment"], payer, holder,
                                     value=total, end=12 * years, services=sorted(ss, key=SERVICES.index),
                                     places=place_list(qs),
                                     per_capita=total / heads, risk_terms=hc["risk_terms"], trust=trust0,
                                     outcome_share=hc["outcomes"]["share"],
                                     outcome_terms=hc["outcomes"] if hc["outcomes"]["share"] > 0 else None))
            net.holder_contracts.append(c.cid)
            net.set_route([s for s in ss if holder in sp[s]], holder, c.cid)

    # alliance: one agreement binding the commissioner and the members; members keep their contracts
    if arrangement["alliance"]:
        al = arrangement["alliance"]
        lists = practice_lists
        total_list = sum(lists.values()) or 1.0
        for mem in al["members"]:
            if mem == "practices":   # every GP practice, sharing the practices' risk share by list size
                for pid, n in lists.items():
                    net.add(new_contract(f"alliance:{pid}", "alliance", "none", ccg, pid,
                                         end=12 * al["contract_years"], trust=trust0,
                                         maturity=p["trust"]["alliance_maturity_start"],
                                         share=al["risk_shares"].get("practices", 0.0) * n / total_list))
                continue
            net.add(new_contract(f"alliance:{mem}", "alliance", "none", ccg, mem, end=12 * al["contract_years"],
                                 share=al["risk_shares"].get(mem, 0.0), trust=trust0,
                                 maturity=p["trust"]["alliance_maturity_start"]))
            net.set_role(mem, "member")

    # GP practices: GMS/PMS with the commissioner, plus an Integration Agreement, or inside the ICP
    terms = arrangement["practices"]
    gp_into_holder: dict[str, float] = {}   # by the commissioner whose GMS/PMS money moves into the ICP
    for pr in economy["practices"]["list"]:
        pid = pr["id"]
        net.set_role(pid, "practice")
        lst = practice_lists[pid]
        mode = practice_modes.get(pid, "outside")
        gp_payer = places[lead_place[pid]]["commissioner"] if n_places > 1 else ccg
        gms = net.add(new_contract(f"gms:{pid}", "gms_pms", "capitation", gp_payer, pid, value=cap * lst,
                                   per_capita=cap, services=("gp_f2f", "gp_digital"), note=pr["contract"]))
        net.fund_practice(pid, gms)
        if mode == "partial":
            f = terms["integration_fee_per_head"]
            net.add(new_contract(f"ia:{pid}", "integration_agreement", "fee", holder, pid, value=f * lst,
                                 per_capita=f, trust=trust0))
        elif mode == "full":
            net.suspend(gms)
            per_head = cap * (1 + terms["full_uplift"])
            gp_into_holder[gp_payer] = gp_into_holder.get(gp_payer, 0.0) + per_head * lst
            if practice_salaried.get(pid, False):
                c = new_contract(f"sal:{pid}", "salaried", "block", holder, pid, value=spend[pid]["gp_total_cost"],
                                 services=("gp_f2f", "gp_digital"), pass_through=1.0, trust=trust0)
            else:
                c = new_contract(f"sub:{pid}", "subcontract", "capitation", holder, pid, value=per_head * lst,
                                 per_capita=per_head, services=("gp_f2f", "gp_digital"), trust=trust0)
            net.fund_practice(pid, net.add(c))
    for payer, amount in gp_into_holder.items():
        if not net.holder_contracts:
            break
        cid = f"{hc['kind']}:{payer}"
        main = net[cid] if cid in net else net[net.holder_contracts[0]]
        main.value = main.value + amount
        main["gp_per_head"] = cap * (1 + terms["full_uplift"])
        main.services = sorted(set(main.services) | {"gp_f2f", "gp_digital"}, key=SERVICES.index)
    net.refused = sorted(refused)
    return net


def write_graphml(g: nx.MultiDiGraph, path: str | Path) -> None:
    """GraphML keeps only scalar attributes: convert anything else to text, leave out empty ones."""
    h = nx.MultiDiGraph()
    safe = lambda a: {k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in a.items() if v is not None}
    for n, a in g.nodes(data=True):
        h.add_node(n, **safe(a))
    for u, v, k, a in g.edges(keys=True, data=True):
        h.add_edge(u, v, key=k, **safe(a))
    nx.write_graphml(h, str(path))
