"""Organisations as Mesa agents. Patients are not agents: they are arrays in `abm.patients`.

Agents hold the state that decisions use (reserves via the ledger, unit-cost ratio, quality, capacity,
trust) and the decisions themselves live in `abm.behaviour`, which reads and updates these agents.
"""
from __future__ import annotations

import mesa


class Organisation(mesa.Agent):
    """Any party to a contract."""

    def __init__(self, model: "mesa.Model", org_id: str, kind: str, name: str, nhs_body: bool, idx: int,
                 cost_ratio: float = 1.0, quality: float = 0.7, vat_recovers: bool | None = None):
        super().__init__(model)
        self.org_id = org_id
        self.kind = kind
        self.name = name
        self.nhs_body = bool(nhs_body)
        self.vat_recovers = self.nhs_body if vat_recovers is None else bool(vat_recovers)
        self.idx = idx                      # account index in the ledger
        self.cost_ratio = float(cost_ratio)  # unit cost relative to the average (efficiency)
        self.quality = float(quality)
        self.quality0 = float(quality)
        self.failed = False
        self.failed_month: int | None = None
        self.successor_of: str | None = None
        self.interim_until = -1             # month until which an interim premium applies
        self.expected_cost = 0.0            # £ a year at baseline activity
        self.expected_income = 0.0          # £ a year at baseline (node size in network views)
        self.fixed_cost = 0.0               # £ a year
        self.last_income = 0.0
        self.last_surplus = 0.0

    @property
    def reserves(self) -> float:
        return self.model.ledger.reserves(self.idx)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.org_id!r})"


class Funder(Organisation):
    """National funder: pays yearly allocations that move with population size (001)."""


class Commissioner(Organisation):
    """Holds contracts, monitors quality, terminates and re-procures (002 §22)."""


class LocalAuthority(Commissioner):
    """Co-commissioner of adult social care (002 §17)."""


class Provider(Organisation):
    """Trusts, the GP federation, voluntary, private and social-care providers, and a prime contractor."""


class GPPractice(Organisation):
    """A practice: GMS/PMS by default; chooses outside / partial / full under an ICP (002 §13)."""

    def __init__(self, *args, list_size: float = 0.0, contract: str = "gms", **kwargs):
        super().__init__(*args, **kwargs)
        self.list_size = float(list_size)
        self.contract_type = contract
        self.mode = "outside"
        self.autonomy = 0.5
        self.salaried = False
        self.returned = False
        self.notice_month: int | None = None
        self.income_before = 0.0            # yearly income in the year before integrating
        self.expected_list = float(list_size)
        self.fixed_scale = 1.0


AGENT_CLASS = {"funder": Funder, "commissioner": Commissioner, "local_authority": LocalAuthority,
               "gp_practice": GPPractice}


def agent_class(kind: str) -> type[Organisation]:
    return AGENT_CLASS.get(kind, Provider)
