"""Kinds as data: what each kind of organisation, contract and payment *is*, in one table each.

The model asks these tables ("does this contract coordinate care?", "is this body a commissioner?")
instead of comparing kind names in code. Adding a kind means adding a row here (and, for an
organisation, an agent class in `abm.agents`). No imports beyond the standard library: the
parameter loader and the CLI use these tables without loading the model.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrgKind:
    """A kind of organisation. `side`: funder, commissioner, provider or practice (who it is in the
    money flows); `party`: the finance.parquet party it reports under unless its role says otherwise."""
    name: str
    side: str
    agent: str                 # agent class in abm.agents
    party: str


ORG_KINDS: dict[str, OrgKind] = {k.name: k for k in (
    OrgKind("funder", "funder", "Funder", "funder"),
    OrgKind("commissioner", "commissioner", "Commissioner", "commissioner"),
    OrgKind("local_authority", "commissioner", "LocalAuthority", "commissioner"),
    OrgKind("acute", "provider", "Provider", "providers"),
    OrgKind("community", "provider", "Provider", "providers"),
    OrgKind("mental_health", "provider", "Provider", "providers"),
    OrgKind("social_care", "provider", "Provider", "providers"),
    OrgKind("voluntary", "provider", "Provider", "providers"),
    OrgKind("private", "provider", "Provider", "providers"),
    OrgKind("gp_federation", "provider", "Provider", "providers"),
    OrgKind("prime_contractor", "provider", "Provider", "providers"),
    OrgKind("gp_practice", "practice", "GPPractice", "gp_practices"),
)}


@dataclass(frozen=True)
class ContractKind:
    """A kind of contract.

    coordinating: it coordinates care between its parties (counts for integration; its relational
      trust learns from outcomes).
    holder_population: the population contract of a holder (prime or ICP): procured, paid per head.
    under_holder: the holder manages it (subcontract management cost, VAT leakage, commissioner cover
      when the holder fails, holder pass-through of variance).
    holder_network: puts the payee inside the holder's coordinated network (shared records).
    employment: the payee's staff become the holder's: a hand-off between them is no hand-off.
    agreement: one agreement over many parties (the alliance): counted once, governance per member.
    quality_reviewed: the commissioner reviews the payee's quality under it and may end it.
    funding: a funding allocation, not a care contract (no admin cost, not counted as a contract).
    admin_key: key of `transaction.contract_cost`; None means by payment (standard contracts).
    counted: counts in the contracts a commissioner manages (non-contract activity does not).
    """
    name: str
    coordinating: bool = False
    holder_population: bool = False
    under_holder: bool = False
    holder_network: bool = False
    employment: bool = False
    agreement: bool = False
    quality_reviewed: bool = True
    funding: bool = False
    admin_key: str | None = None
    counted: bool = True       # counts as a contract someone manages (not: non-contract activity)


CONTRACT_KINDS: dict[str, ContractKind] = {k.name: k for k in (
    ContractKind("allocation", quality_reviewed=False, funding=True, admin_key="allocation"),
    ContractKind("standard", admin_key=None),
    ContractKind("gms_pms", quality_reviewed=False, admin_key="gms_pms"),
    ContractKind("non_contract", quality_reviewed=False, admin_key="non_contract", counted=False),
    ContractKind("alliance", coordinating=True, agreement=True, quality_reviewed=False, admin_key="alliance"),
    ContractKind("prime", coordinating=True, holder_population=True, admin_key="prime"),
    ContractKind("icp", coordinating=True, holder_population=True, admin_key="icp"),
    ContractKind("subcontract", coordinating=True, under_holder=True, holder_network=True, admin_key="subcontract"),
    ContractKind("integration_agreement", coordinating=True, holder_network=True, quality_reviewed=False,
                 admin_key="integration_agreement"),
    ContractKind("salaried", coordinating=True, under_holder=True, holder_network=True, employment=True,
                 admin_key="salaried"),
)}


@dataclass(frozen=True)
class PaymentKind:
    """A way of paying. per_activity: paid per unit delivered (volume rises); population_based: paid
    per registered head (counts in population_payment_share); fixed_value: a yearly value paid in
    twelfths; repriced: a successor's fixed-value contract is re-priced at what the service cost."""
    name: str
    per_activity: bool = False
    population_based: bool = False
    fixed_value: bool = True
    avoids_activity: bool = False      # the provider gains by avoiding activity (volume falls)
    repriced: bool = False
    pays: bool = True


PAYMENT_KINDS: dict[str, PaymentKind] = {k.name: k for k in (
    PaymentKind("allocation"),
    PaymentKind("tariff", per_activity=True, fixed_value=False),
    PaymentKind("block", avoids_activity=True, repriced=True),
    PaymentKind("capitation", population_based=True, avoids_activity=True),
    PaymentKind("wpap", population_based=True, avoids_activity=True),
    PaymentKind("fee", repriced=True),
    PaymentKind("none", fixed_value=False, pays=False),
)}

@dataclass(frozen=True)
class LegalForm:
    """How an organisation can fail.

    public: cannot become insolvent (an NHS trust or foundation trust; a council): deficits are carried.
    cash_support: the centre lends it cash when its reserves run out (NHS revenue support, repayable).
    owners_hand_back: its owners may hand a loss-making holder contract back before insolvency.
    partners_absorb: the owners' own pay is the residual (a GP partnership's drawings), so losses cut
    it before they threaten the contract (`failure.partner_drawings_cut`).
    """
    name: str
    public: bool
    cash_support: bool
    owners_hand_back: bool
    label: str
    partners_absorb: bool = False


LEGAL_FORMS: dict[str, LegalForm] = {f.name: f for f in (
    LegalForm("nhs_trust", True, True, False, "NHS trust or foundation trust"),
    LegalForm("public_body", True, False, False, "national body, commissioner or council"),
    LegalForm("company", False, False, True, "company"),
    LegalForm("llp", False, False, True, "limited liability partnership"),
    LegalForm("social_enterprise", False, False, True, "social enterprise (community interest company)"),
    LegalForm("charity", False, False, True, "charity"),
    LegalForm("gp_partnership", False, False, False, "GP partnership", partners_absorb=True),
)}


def default_legal_form(kind: str, nhs_body: bool) -> str:
    """The usual legal form of an organisation of this kind when the economy file does not say."""
    side = ORG_KINDS[kind].side
    if side in ("funder", "commissioner"):
        return "public_body"
    if kind == "gp_practice":
        return "gp_partnership"
    if nhs_body:
        return "nhs_trust"
    return {"voluntary": "charity", "prime_contractor": "llp"}.get(kind, "company")


ORG_KIND_NAMES = tuple(ORG_KINDS)
PROVIDER_KINDS = tuple(k for k, v in ORG_KINDS.items() if v.side == "provider")
CONTRACT_KIND_NAMES = tuple(CONTRACT_KINDS)
PAYMENT_NAMES = tuple(PAYMENT_KINDS)
LEGAL_FORM_NAMES = tuple(LEGAL_FORMS)
COORDINATING = tuple(k for k, v in CONTRACT_KINDS.items() if v.coordinating)
