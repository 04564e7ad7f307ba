"""The model as the browser page builds it: simple keyword arguments mapped to ContractingModel's.

Mesa's SolaraViz re-creates the model on Reset by calling the model class with the values of the
page's inputs, so those inputs must be plain keyword arguments of one class: :class:`VizModel`.
"""
from __future__ import annotations

import zlib

from ..model import ContractingModel
from ..params import ARRANGEMENTS, resolve

DEFAULT_SCALE = 0.1          # 10% population sample: a month takes ~10-40 ms (measured), so Play feels live
DEFAULT_SEED = 42
SHOCK = {"kind": "demand_surge", "month": 13, "size": 0.10}
CONFIGURED = "as configured"
CONTRACT_YEAR_CHOICES = (CONFIGURED, "3", "5", "7", "10", "15")


def _defaults() -> tuple[float, float]:
    """Prevention budget share and mean practice autonomy from the shipped parameters."""
    p = resolve("icp_full", None, {})["params"]
    return float(p["prevention"]["budget_share"]), float(p["participation"]["autonomy_mean"])


DEFAULT_PREVENTION, DEFAULT_AUTONOMY = _defaults()


def seed_of(value) -> int:
    """An integer seed from what the page's text box holds ("42", 42, or any text: hashed)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        return zlib.crc32(text.encode())


def contract_years_override(arrangement: str, contract_years) -> dict:
    """The override that sets the lead's (or alliance's) contract length, or {} where there is none."""
    if contract_years in (None, "", CONFIGURED):
        return {}
    years = int(contract_years)
    if arrangement == "alliance":
        return {"arrangement__alliance__contract_years": years}
    arr = resolve(arrangement, None, {})["arrangement"]
    if arr.get("holder") and arr.get("contract"):
        return {"arrangement__contract__contract_years": years}
    return {}


def model_kwargs(arrangement: str = "icp_full", population_scale: float = DEFAULT_SCALE,
                 prevention_budget_share: float = DEFAULT_PREVENTION, contract_years=CONFIGURED,
                 autonomy_mean: float = DEFAULT_AUTONOMY, shock: bool = False, rng=DEFAULT_SEED) -> dict:
    """ContractingModel keyword arguments for the page's inputs."""
    if arrangement not in ARRANGEMENTS:
        arrangement = "icp_full"
    kw = {
        "arrangement": arrangement,
        "rng": seed_of(rng),
        "population_scale": float(population_scale),
        "prevention__budget_share": float(prevention_budget_share),
        "participation__autonomy_mean": float(autonomy_mean),
        "shocks": [dict(SHOCK)] if shock else [],
    }
    kw.update(contract_years_override(arrangement, contract_years))
    return kw


class VizModel(ContractingModel):
    """ContractingModel with the page's inputs as keyword arguments; also keeps each organisation's
    reserves month by month (the reserves chart needs their history)."""

    def __init__(self, arrangement: str = "icp_full", population_scale: float = DEFAULT_SCALE,
                 prevention_budget_share: float = DEFAULT_PREVENTION, contract_years=CONFIGURED,
                 autonomy_mean: float = DEFAULT_AUTONOMY, shock: bool = False, rng=DEFAULT_SEED):
        kw = model_kwargs(arrangement, population_scale, prevention_budget_share, contract_years,
                          autonomy_mean, shock, rng)
        super().__init__(**kw)
        self.inputs = {"arrangement": kw["arrangement"], "population_scale": self.scale,
                       "prevention_budget_share": prevention_budget_share, "contract_years": contract_years,
                       "autonomy_mean": autonomy_mean, "shock": bool(shock), "rng": kw["rng"]}
        self.initial_holder = self.holder
        self.practices_integrated_at_start = sum(pr.mode != "outside" for pr in self.practices)
        self.reserve_history: list[dict[str, float]] = []
        self._record_reserves()

    def _record_reserves(self) -> None:
        self.reserve_history.append({o.org_id: o.reserves for o in self.orgs})

    def step(self) -> None:
        super().step()
        self._record_reserves()


__all__ = ["VizModel", "model_kwargs", "seed_of", "contract_years_override", "DEFAULT_SCALE",
           "DEFAULT_SEED", "SHOCK", "CONTRACT_YEAR_CHOICES", "CONFIGURED"]
