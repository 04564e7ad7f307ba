"""Parameters as data: loading the sourced YAML defaults, the economy and arrangements, and overrides.

Every default lives in `configs/` with its unit and source. Overrides are patches applied to a deep
copy, so a reform never leaks into the baseline. Bad input raises `ConfigError` naming the file,
the field and what is allowed.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, did_you_mean
from .kinds import LEGAL_FORM_NAMES

ARRANGEMENTS = ("fragmented", "alliance", "prime_contractor", "prime_provider", "icp_partial", "icp_full")
SERVICES = ("gp_f2f", "gp_digital", "community", "outpatient", "elective", "emergency", "mental_health", "social_care")
GP_SERVICES = ("gp_f2f", "gp_digital")
ORG_KINDS = ("funder", "commissioner", "local_authority", "acute", "community", "mental_health", "social_care",
             "voluntary", "private", "gp_practice", "gp_federation", "prime_contractor")
PROVIDER_KINDS = ("acute", "community", "mental_health", "social_care", "voluntary", "private", "gp_federation",
                  "prime_contractor")
PAYMENTS = ("allocation", "tariff", "block", "capitation", "wpap", "fee", "none")
SHOCK_KINDS = ("demand_surge", "cost_inflation", "efficiency_shortfall", "population_growth", "ageing", "quality_fall")
PARTICIPATION = ("outside", "partial", "full")


# --------------------------------------------------------------------------- locating packaged data
def config_dir() -> Path:
    """The copy inside an installed wheel, or `configs/` beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_data" / "configs", here.parent / "configs"):
        if cand.is_dir():
            return cand
    return Path(str(resources.files("abm") / "_data" / "configs"))


def default_economy_path() -> Path:
    return config_dir() / "economies" / "dudley.yaml"


def arrangement_path(key: str) -> Path:
    return config_dir() / "arrangements" / f"{key}.yaml"


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""


def _unique_mapping(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:
            continue
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first + 1})", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml_text(text: str) -> Any:
    """Parse YAML text safely, refusing duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def read_yaml(path: str | Path) -> Any:
    """Read YAML, turning a missing file, a syntax error or a duplicate key into one clear line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("file not found", file=str(p))
    try:
        return load_yaml_text(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"YAML syntax error{where}: {problem}", file=str(p)) from None


def pydantic_error(exc: ValidationError, file: str | None, model: type[BaseModel] | None = None) -> ConfigError:
    """First pydantic error as a ConfigError (with a 'did you mean' for unknown keys)."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    if err["type"] == "extra_forbidden":
        parent = model
        known: list[str] = []
        if parent is not None:
            known = list(parent.model_fields)
            for part in err["loc"][:-1]:
                f = parent.model_fields.get(str(part)) if parent else None
                ann = getattr(f, "annotation", None)
                parent = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
                known = list(parent.model_fields) if parent else []
        hint = did_you_mean(str(err["loc"][-1]), known)
        return ConfigError("unknown key" + (f"; {hint}" if hint else ""), file=file, field=loc,
                           allowed=", ".join(known) if known and not hint else None)
    msg = err["msg"].replace("Value error, ", "")
    return ConfigError(msg, file=file, field=loc or None, value=err.get("input") if not isinstance(err.get("input"), dict) else None)


# --------------------------------------------------------------------------- parameter tree
def _is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "value" in node and ("unit" in node or "source" in node)


def _bounds(leaf: dict) -> tuple[float | None, float | None]:
    lo, hi = leaf.get("min"), leaf.get("max")
    unit = str(leaf.get("unit", ""))
    if lo is None and hi is None and (unit.startswith("share") or unit.startswith("probability") or unit.startswith("0-1")):
        lo, hi = 0.0, 1.0
    if lo is None and unit.startswith("£"):        # money amounts (costs, prices, payments) are not negative
        lo = 0.0
    return lo, hi


@lru_cache(maxsize=1)
def _default_tree_cached() -> str:
    path = config_dir() / "parameters.yaml"
    return json.dumps(read_yaml(path))


def default_parameters() -> dict:
    """The sourced parameter tree (a fresh deep copy each call)."""
    return json.loads(_default_tree_cached())


def flatten(tree: dict, prefix: str = "") -> dict[str, dict]:
    """Dotted name -> leaf (value, unit, source, ...)."""
    out: dict[str, dict] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if _is_leaf(v):
            out[name] = v
        elif isinstance(v, dict):
            out.update(flatten(v, name + "."))
    return out


# --------------------------------------------------------------------------- assumption register
#: Keys a parameter leaf may carry besides `value`: its unit, source and meaning, hard bounds
#: (`min`, `max`) and, for assumptions, the plausible range the robustness study sweeps:
#: `range: [low, high]` for a number, or `range_scale: [low, high]` for a mapping of numbers
#: (a multiplier applied to every entry, each capped at the leaf's bounds), with `range_why`.
LEAF_KEYS = ("value", "unit", "source", "description", "min", "max", "range", "range_scale",
             "range_why")


def is_assumption(leaf: dict) -> bool:
    """A leaf whose source says (in part) that it is an assumption."""
    return "assumption" in str(leaf.get("source", "")).lower()


def plausible_range(leaf: dict) -> tuple[float, float] | None:
    """The leaf's `range` (or `range_scale`) as (low, high), or None when it has neither."""
    rng = leaf.get("range", leaf.get("range_scale"))
    return None if rng is None else (float(rng[0]), float(rng[1]))


def register_problems(tree: dict | None = None) -> list[str]:
    """Everything wrong with the assumption register, one line each (empty when sound): an
    assumption without a range or a reason, a malformed range, a default outside its range, a
    range outside the leaf's bounds (`min`/`max`, or 0-1 for shares and probabilities)."""
    problems = []
    for name, leaf in flatten(default_parameters() if tree is None else tree).items():
        has = "range" in leaf or "range_scale" in leaf
        if not has:
            if is_assumption(leaf):
                problems.append(f"{name}: assumption without a range")
            continue
        if "range" in leaf and "range_scale" in leaf:
            problems.append(f"{name}: give range or range_scale, not both")
            continue
        if not str(leaf.get("range_why", "")).strip():
            problems.append(f"{name}: range without a one-line range_why")
        rng = leaf.get("range", leaf.get("range_scale"))
        if (not isinstance(rng, list) or len(rng) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                           and math.isfinite(x) for x in rng) or not rng[0] < rng[1]):
            problems.append(f"{name}: range must be [low, high] numbers with low < high, got {rng!r}")
            continue
        lo, hi = _bounds(leaf)
        value = leaf["value"]
        if "range_scale" in leaf:
            if not isinstance(value, dict):
                problems.append(f"{name}: range_scale is for mappings of numbers; use range")
            elif not (0 < rng[0] <= 1 <= rng[1]):
                problems.append(f"{name}: range_scale {rng} must be positive and contain 1 (the default)")
            continue
        if isinstance(value, (dict, list)) or isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{name}: range is for a number; use range_scale for a mapping")
            continue
        if not rng[0] <= value <= rng[1]:
            problems.append(f"{name}: default {value} outside its range {rng}")
        if (lo is not None and rng[0] < lo) or (hi is not None and rng[1] > hi):
            problems.append(f"{name}: range {rng} outside the bounds {lo} to {hi}")
    return problems


def assumption_register(tree: dict | None = None) -> list[dict]:
    """One row per leaf with a plausible range: name, value, unit, low, high, kind (`range` or
    `range_scale`), why, and whether its source calls it an assumption."""
    rows = []
    for name, leaf in flatten(default_parameters() if tree is None else tree).items():
        rng = plausible_range(leaf)
        if rng is None:
            continue
        rows.append({"name": name, "value": leaf["value"], "unit": leaf.get("unit", ""),
                     "low": rng[0], "high": rng[1],
                     "kind": "range_scale" if "range_scale" in leaf else "range",
                     "why": leaf.get("range_why", ""), "assumption": is_assumption(leaf)})
    return rows


def scaled_value(leaf: dict, scale: float) -> dict:
    """A mapping leaf's value with every entry multiplied by `scale`, capped at its bounds."""
    lo, hi = _bounds(leaf)
    out = {}
    for k, x in leaf["value"].items():
        y = x * scale
        y = y if lo is None else max(lo, y)
        out[k] = y if hi is None else min(hi, y)
    return out


def values(tree: dict) -> dict:
    """Strip units and sources: a nested dict of plain values for the model to read."""
    out = {}
    for k, v in tree.items():
        if _is_leaf(v):
            out[k] = v["value"]
        elif isinstance(v, dict):
            out[k] = values(v)
        else:
            out[k] = v
    return out


def _check_value(name: str, leaf: dict, value: Any, file: str | None) -> Any:
    old = leaf["value"]
    lo, hi = _bounds(leaf)

    def check_scalar(x: Any, old_x: Any, field: str) -> Any:
        if isinstance(old_x, bool):
            if not isinstance(x, bool):
                raise ConfigError("wrong type", file=file, field=field, value=x, allowed="true or false")
            return x
        if isinstance(old_x, (int, float)):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ConfigError("wrong type", file=file, field=field, value=x, allowed="a number")
            if not math.isfinite(x):
                raise ConfigError("not a finite number", file=file, field=field, value=x, allowed="a finite number")
            if (lo is not None and x < lo) or (hi is not None and x > hi):
                raise ConfigError("out of range", file=file, field=field, value=x,
                                  allowed=f"{lo if lo is not None else '-inf'} to {hi if hi is not None else 'inf'}")
            return float(x) if isinstance(old_x, float) else x
        if isinstance(old_x, str):
            if not isinstance(x, str):
                raise ConfigError("wrong type", file=file, field=field, value=x, allowed="text")
            allowed = [s.strip() for s in str(leaf.get("unit", "")).split(" or ")]
            if len(allowed) > 1 and x not in allowed:
                raise ConfigError("not an allowed value", file=file, field=field, value=x, allowed=", ".join(allowed))
            return x
        return x

    if isinstance(old, list):
        if not isinstance(value, list) or len(value) != len(old):
            raise ConfigError("wrong type", file=file, field=name, value=value, allowed=f"a list of {len(old)} numbers")
        return [check_scalar(x, o, name) for x, o in zip(value, old)]
    if isinstance(old, dict):
        if not isinstance(value, dict):
            raise ConfigError("wrong type", file=file, field=name, value=value, allowed=f"a mapping with keys {', '.join(old)}")
        out = dict(old)
        for k, x in value.items():
            if k not in old:
                hint = did_you_mean(k, old)
                raise ConfigError("unknown key" + (f"; {hint}" if hint else ""), file=file, field=f"{name}.{k}",
                                  allowed=None if hint else ", ".join(old))
            out[k] = check_scalar(x, old[k], f"{name}.{k}")
        return out
    return check_scalar(value, old, name)


def normalise_override_names(overrides: dict | None) -> dict:
    """Accept both `prevention.budget_share` and `prevention__budget_share`."""
    return {str(k).replace("__", "."): v for k, v in (overrides or {}).items()}


def split_overrides(overrides: dict) -> tuple[dict, dict, dict]:
    """Split into parameter, `arrangement.*` and `economy.*` overrides."""
    par, arr, eco = {}, {}, {}
    for k, v in overrides.items():
        if k.startswith("arrangement."):
            arr[k[len("arrangement."):]] = v
        elif k.startswith("economy."):
            eco[k[len("economy."):]] = v
        else:
            par[k] = v
    return par, arr, eco


#: `name@scale: x` multiplies every entry of a mapping parameter by x, each capped at the leaf's
#: bounds: how an experiment sweeps a mapping over its register `range_scale`
SCALE_SUFFIX = "@scale"


def _scale_mapping(name: str, leaf: dict, factor: Any, file: str | None) -> dict:
    if not isinstance(leaf["value"], dict):
        raise ConfigError("a scale applies to a mapping parameter only", file=file, field=name,
                          allowed="a parameter whose value is a mapping of numbers")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
        raise ConfigError("wrong type", file=file, field=name, value=factor, allowed="a number >= 0")
    lo, hi = _bounds(leaf)
    lo, hi = -math.inf if lo is None else lo, math.inf if hi is None else hi
    return {k: min(max(v * factor, lo), hi) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            for k, v in leaf["value"].items()}


def apply_parameter_overrides(tree: dict, overrides: dict, file: str | None = None) -> dict:
    """Return a patched deep copy of the parameter tree."""
    tree = copy.deepcopy(tree)
    leaves = flatten(tree)
    for name, value in overrides.items():
        base = name[:-len(SCALE_SUFFIX)] if name.endswith(SCALE_SUFFIX) else None
        if base is not None and base in leaves:
            leaves[base]["value"] = _scale_mapping(name, leaves[base], value, file)
            continue
        if name not in leaves:
            hint = did_you_mean(name, leaves)
            raise ConfigError("unknown parameter" + (f"; {hint}" if hint else ""), file=file, field=name,
                              allowed=None if hint else "a dotted name from configs/parameters.yaml, or arrangement.* / economy.*")
        leaves[name]["value"] = _check_value(name, leaves[name], value, file)
    return tree


def _patch_nested(data: dict, dotted: str, value: Any, file: str | None, root: str) -> None:
    parts = dotted.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            keys = list(node) if isinstance(node, dict) else []
            hint = did_you_mean(part, keys)
            raise ConfigError("unknown key" + (f"; {hint}" if hint else ""), file=file,
                              field=f"{root}.{'.'.join(parts[:i + 1])}", allowed=None if hint else ", ".join(map(str, keys)))
        node = node[part]
        if isinstance(node, dict) and _is_leaf(node):
            node = node
    last = parts[-1]
    if not isinstance(node, dict) or (last not in node and not (isinstance(node, dict) and "value" in node)):
        keys = list(node) if isinstance(node, dict) else []
        hint = did_you_mean(last, keys)
        raise ConfigError("unknown key" + (f"; {hint}" if hint else ""), file=file, field=f"{root}.{dotted}",
                          allowed=None if hint else ", ".join(map(str, keys)))
    if last in node and isinstance(node[last], dict) and "value" in node[last] and not isinstance(value, dict):
        node[last]["value"] = value
    else:
        node[last] = value


def validate_overrides(overrides: dict | None, arrangement: str | None = None, file: str | None = None) -> None:
    """Check override names and values without building a model (for `abm validate`).

    An `arrangement.*` override must be valid for the given arrangement, or, with none given, for
    at least one of them (e.g. `arrangement.alliance.pool_fraction` only exists in `alliance`).
    """
    par, arr, eco = split_overrides(normalise_override_names(overrides))
    apply_parameter_overrides(default_parameters(), par, file)
    if eco:
        load_economy(None, eco, file=file)
    if not arr:
        return
    errors = []
    for key in ([arrangement] if arrangement else ARRANGEMENTS):
        try:
            load_arrangement(key, arr, file=file)
            return
        except ConfigError as exc:
            errors.append(exc)
    if arrangement:
        raise errors[-1]
    # prefer an error about a value over "unknown key", and a hint over none
    raise min(errors, key=lambda e: ("unknown key" in e.detail, "did you mean" not in e.detail))


def check_overrides_apply(overrides: dict | None, arrangements: list[str], file: str | None = None) -> None:
    """Every `arrangement.*` override must apply to at least one compared arrangement. One that is
    valid only in arrangements not compared (e.g. `arrangement.contract.contract_years` when only
    `fragmented` and `alliance` are compared) would silently change nothing, and one valid in no
    arrangement is a typo: both are refused, naming the arrangements it does apply to."""
    _, arr, _ = split_overrides(normalise_override_names(overrides or {}))
    if not arr:
        return
    applied: set[str] = set()
    for key in arrangements:
        applied |= set(arr) - set(load_arrangement(key, arr, file=file)["not_applicable"])
    for k in sorted(set(arr) - applied):
        where, last = [], None
        for key in ARRANGEMENTS:
            try:
                if k not in load_arrangement(key, {k: arr[k]}, file=file)["not_applicable"]:
                    where.append(key)
            except ConfigError as exc:
                last = exc
        if not where and last is not None:
            raise last
        raise ConfigError(f"applies to none of the arrangements compared ({', '.join(map(str, arrangements))})",
                          file=file, field=f"arrangement.{k}",
                          allowed=f"compare an arrangement it applies to ({', '.join(where)}), or remove it")


# --------------------------------------------------------------------------- economy schema
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sourced(Strict):
    value: Any
    unit: str
    source: str
    description: str | None = None


class Population(Strict):
    total: Sourced
    age_bands: Sourced
    age_share: Sourced
    ltc_mean: Sourced

    @model_validator(mode="after")
    def _check(self):
        if not isinstance(self.total.value, (int, float)) or isinstance(self.total.value, bool) or self.total.value <= 0:
            raise ValueError(f"population.total must be a positive number (got {self.total.value!r})")
        n = len(self.age_bands.value)
        share = self.age_share.value
        if len(share) != n or any((not isinstance(x, (int, float))) or x < 0 for x in share):
            raise ValueError(f"population.age_share must be {n} non-negative numbers")
        if abs(sum(share) - 1.0) > 1e-6:
            raise ValueError(f"population.age_share must sum to 1 (sums to {sum(share):.4f})")
        if len(self.ltc_mean.value) != n or any(x < 0 for x in self.ltc_mean.value):
            raise ValueError(f"population.ltc_mean must be {n} non-negative numbers")
        if n != 7:
            raise ValueError("population.age_bands must be the 7 bands 0-4, 5-17, 18-44, 45-64, 65-74, 75-84, 85+")
        return self


class Organisation(Strict):
    id: str
    kind: Literal[ORG_KINDS]  # type: ignore[valid-type]
    name: str
    nhs_body: bool
    legal_form: Literal[LEGAL_FORM_NAMES] | None = None  # type: ignore[valid-type]  # default by kind
    outside_network: bool = False      # another system's providers: paid as non-contract activity, never subcontracted
    vat_recovers: bool | None = None
    cost_ratio: float = Field(1.0, gt=0)
    quality: float = Field(0.7, ge=0, le=1)
    source: str | None = None


class Practice(Strict):
    id: str
    list_size: int = Field(gt=0)
    contract: Literal["gms", "pms"] = "gms"
    place: str | None = None                   # the place (commissioner and council) it belongs to
    name: str | None = None
    age_share: list[float] | None = None       # its own age structure (7 bands), else the economy's

    @field_validator("age_share")
    @classmethod
    def _age(cls, v):
        if v is not None:
            if len(v) != 7 or any(x < 0 for x in v) or abs(sum(v) - 1.0) > 1e-6:
                raise ValueError("age_share must be 7 non-negative numbers summing to 1 (bands 0-4 ... 85+)")
        return v


class Place(Strict):
    """A place inside the economy: its NHS commissioner (an ICB place or sub-ICB location) and its council."""
    id: str
    name: str
    commissioner: str
    local_authority: str | None = None
    source: str | None = None
    # this place's organisation for each id the arrangement files use (see Economy.aliases); read by
    # a multi-place model to find each place's holder and alliance members, not applied here
    aliases: dict[str, str] | None = None


class Practices(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str
    unit: str
    items: list[Practice] = Field(alias="list", min_length=1)


class Economy(Strict):
    name: str
    description: str | None = None
    population: Population
    organisations: list[Organisation]
    service_providers: Sourced
    commissioned_by: Sourced
    practices: Practices
    places: list[Place] | None = None
    # Arrangement files name organisations of the default economy (holder `dchs`, alliance members
    # `dgft`, ...). `aliases` maps such an id to this economy's organisation playing that part, so
    # every arrangement runs on an economy with other ids (e.g. one built by `abm economy build`).
    aliases: dict[str, str] | None = None

    @model_validator(mode="after")
    def _check(self):
        ids = [o.id for o in self.organisations] + [p.id for p in self.practices.items]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate organisation ids: {sorted(dup)}")
        kinds = {o.kind for o in self.organisations}
        for need in ("funder", "commissioner"):
            if need not in kinds:
                raise ValueError(f"organisations need one of kind '{need}'")
        orgs = {o.id for o in self.organisations}
        sp = self.service_providers.value
        if set(sp) != set(SERVICES):
            missing = sorted(set(SERVICES) - set(sp))
            extra = sorted(set(sp) - set(SERVICES))
            raise ValueError(f"service_providers must list exactly {', '.join(SERVICES)} (missing {missing}, unknown {extra})")
        for s, shares in sp.items():
            for org, x in shares.items():
                if org != "practice" and org not in orgs:
                    hint = did_you_mean(org, orgs)
                    raise ValueError(f"service_providers.{s}: unknown organisation '{org}'" + (f"; {hint}" if hint else ""))
                if not 0 <= x <= 1:
                    raise ValueError(f"service_providers.{s}.{org}: share must be between 0 and 1 (got {x})")
            if abs(sum(shares.values()) - 1.0) > 1e-6:
                raise ValueError(f"service_providers.{s}: shares must sum to 1 (sum to {sum(shares.values()):.4f})")
        kind_of = {o.id: o.kind for o in self.organisations}
        roles = ("commissioner", "local_authority")
        for s, org in self.commissioned_by.value.items():
            if org not in orgs and org not in roles:
                raise ValueError(f"commissioned_by.{s}: unknown organisation '{org}' (an organisation id, or "
                                 "'commissioner' / 'local_authority' for each place's own)")
        for where, table in [("aliases", self.aliases)] + [(f"places.{pl.id}.aliases", pl.aliases)
                                                          for pl in (self.places or [])]:
            for ref, org in (table or {}).items():
                if org not in orgs:
                    hint = did_you_mean(org, orgs)
                    raise ValueError(f"{where}.{ref}: unknown organisation '{org}'" + (f"; {hint}" if hint else ""))
                if ref in orgs and ref != org:
                    raise ValueError(f"{where}.{ref}: '{ref}' is already an organisation of this economy")
            if table and len(set(table.values())) != len(table):
                raise ValueError(f"{where}: two ids map to one organisation ({', '.join(sorted(table))})")
        if self.places:
            ids = [p.id for p in self.places]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate place ids: {sorted({i for i in ids if ids.count(i) > 1})}")
            for pl in self.places:
                if kind_of.get(pl.commissioner) != "commissioner":
                    raise ValueError(f"places.{pl.id}.commissioner: '{pl.commissioner}' is not an organisation of kind commissioner")
                if pl.local_authority is not None and kind_of.get(pl.local_authority) != "local_authority":
                    raise ValueError(f"places.{pl.id}.local_authority: '{pl.local_authority}' is not an organisation of kind local_authority")
            for pr in self.practices.items:
                if pr.place is None and len(self.places) > 1:
                    raise ValueError(f"practices: {pr.id} needs a place (one of {', '.join(ids)})")
                if pr.place is not None and pr.place not in ids:
                    raise ValueError(f"practices: {pr.id} has unknown place '{pr.place}' (allowed: {', '.join(ids)})")
            if len(self.places) > 1:
                direct = {s: o for s, o in self.commissioned_by.value.items() if o not in roles}
                if direct:
                    raise ValueError("commissioned_by: with several places each service is commissioned by "
                                     "'commissioner' or 'local_authority' (each place's own), not a named "
                                     f"organisation ({', '.join(direct)})")
        return self


# --------------------------------------------------------------------------- arrangement schema
class NewHolder(Strict):
    id: str
    kind: Literal[ORG_KINDS]  # type: ignore[valid-type]
    name: str
    nhs_body: bool
    legal_form: Literal[LEGAL_FORM_NAMES] | None = None  # type: ignore[valid-type]


class Holder(Strict):
    org: str | None = None
    new: NewHolder | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.org is None) == (self.new is None):
            raise ValueError("holder needs exactly one of 'org' (an existing organisation) or 'new'")
        return self


class RiskTerms(Strict):
    kind: Literal["none", "corridor", "gain_loss"] = "none"
    bands: list[tuple[float, float]] = Field(default_factory=list)  # corridor: (threshold, payer share)
    min_rate: float = Field(0.0, ge=0, le=1)  # gain_loss: minimum savings/loss rate before sharing
    share: float = Field(0.5, ge=0, le=1)     # gain_loss: payer's share beyond the minimum rate
    cap: float = Field(0.1, ge=0, le=1)       # gain_loss: cap as a share of contract value
    gain_share: float | None = Field(None, ge=0, le=1)   # asymmetric terms: the payer's share of savings
    loss_share: float | None = Field(None, ge=0, le=1)   # ... and of losses (default: share)
    gain_cap: float | None = Field(None, ge=0, le=1)
    loss_cap: float | None = Field(None, ge=0, le=1)

    @field_validator("bands")
    @classmethod
    def _bands(cls, v):
        for t, s in v:
            if not (0 <= t <= 1 and 0 <= s <= 1):
                raise ValueError("corridor bands are (threshold, share) pairs in 0-1")
        return sorted(v)


OUTCOME_MEASURES = ("emergency_admissions", "continuity", "quality")


class OutcomeMeasure(Strict):
    """Achievement 0 at `floor`, 1 at `target`, linear between (either direction). emergency_admissions:
    relative change in the rate against the expected rate at award; continuity: change in mean continuity
    of care against the end of the first year; quality: change in the holder network's quality score."""
    weight: float = Field(ge=0)
    target: float
    floor: float

    @model_validator(mode="after")
    def _distinct(self):
        if self.target == self.floor:
            raise ValueError("an outcome measure's target and floor must differ")
        return self


class Outcomes(Strict):
    share: float = Field(0.0, ge=0, le=0.5)    # share of the contract's value paid on outcomes
    measures: dict[Literal[OUTCOME_MEASURES], OutcomeMeasure] = Field(default_factory=dict)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _weights(self):
        if self.share > 0:
            total = sum(m.weight for m in self.measures.values())
            if not self.measures or abs(total - 1.0) > 1e-6:
                raise ValueError(f"outcomes.measures weights must sum to 1 (sum to {total:.4f})")
        return self


class HolderContract(Strict):
    kind: Literal["prime", "icp"]
    payment: Literal["capitation", "wpap", "block"]
    scope: list[Literal[SERVICES[2:]]] = Field(min_length=1)  # type: ignore[valid-type]  # core GP joins via practices.full
    value_factor: float = Field(1.0, gt=0, le=2)
    management_fee: float = Field(0.0, ge=0, le=0.5)
    contract_years: int = Field(10, ge=1, le=50)
    risk_terms: RiskTerms = Field(default_factory=RiskTerms)
    outcomes: Outcomes = Field(default_factory=Outcomes)


class Alliance(Strict):
    members: list[str] = Field(min_length=2)
    risk_shares: dict[str, float]
    pool_fraction: float = Field(1.0, ge=0, le=1)
    contract_years: int = Field(10, ge=1, le=50)
    unanimity: bool = True
    unanimity_trust: float = Field(0.4, ge=0, le=1)

    @model_validator(mode="after")
    def _shares(self):
        if any(s < 0 or s > 1 for s in self.risk_shares.values()):
            raise ValueError("alliance.risk_shares must each be between 0 and 1")
        total = sum(self.risk_shares.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"alliance.risk_shares must sum to 1 (sum to {total:.4f})")
        return self


class PracticeTerms(Strict):
    allowed: list[Literal[PARTICIPATION]] = Field(min_length=1)  # type: ignore[valid-type]
    integration_fee_per_head: float = Field(0.0, ge=0)
    salaried_share: float = Field(0.5, ge=0, le=1)
    full_uplift: float = Field(0.0, ge=-0.5, le=0.5)
    break_points_months: list[int] = Field(default_factory=list)
    notice_months: int = Field(12, ge=0)
    patients_stay_share: float = Field(0.7, ge=0, le=1)


class Arrangement(Strict):
    key: str
    label: str
    description: str
    sources: list[str] = Field(min_length=1)
    holder: Holder | None = None
    contract: HolderContract | None = None
    standard_payment: dict[str, Literal[PAYMENTS]]  # type: ignore[valid-type]
    subcontract_payment: dict[str, Literal[PAYMENTS]] = Field(default_factory=dict)  # type: ignore[valid-type]
    pass_through: float = Field(0.0, ge=0, le=1)
    la_services: Literal["separate", "pooled"] = "separate"
    digital_required: bool = False
    subcontract_permission: bool = False
    alliance: Alliance | None = None
    practices: PracticeTerms
    prevention_holder: Literal["commissioner", "alliance", "holder"] = "commissioner"

    @model_validator(mode="after")
    def _consistent(self):
        if (self.holder is None) != (self.contract is None):
            raise ValueError("holder and contract go together: give both or neither")
        if self.prevention_holder == "holder" and self.holder is None:
            raise ValueError("prevention_holder 'holder' needs a holder")
        if self.prevention_holder == "alliance" and self.alliance is None:
            raise ValueError("prevention_holder 'alliance' needs an alliance block")
        if self.alliance is not None and self.subcontract_payment and self.holder is not None:
            raise ValueError("an alliance has no subcontracts (NHS England IPC programme, About contracting for integrated care): drop holder or alliance")
        if "full" in self.practices.allowed and self.holder is None:
            raise ValueError("practices.allowed 'full' needs a holder to join")
        return self


def _validated(model: type[BaseModel], data: Any, file: str | None):
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", file=file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, file, model) from None


def load_economy(path: str | Path | None = None, overrides: dict | None = None, file: str | None = None) -> dict:
    """Load and validate an economy file (None = the built-in Dudley economy); returns plain data."""
    p = Path(path) if path not in (None, "default") else default_economy_path()
    data = read_yaml(p)
    if overrides:
        data = copy.deepcopy(data)
        for k, v in overrides.items():
            _patch_nested(data, k, v, file or str(p), "economy")
    eco = _validated(Economy, data, file or str(p))
    out = eco.model_dump(by_alias=True)
    out["_path"] = str(p)
    lists = out["practices"]["list"]
    listed = sum(pr["list_size"] for pr in lists)
    total = out["population"]["total"]["value"]
    if overrides and "population.total" in overrides:
        # a new total (e.g. a benchmark at another size) scales every practice's list to it
        for pr in lists:
            pr["list_size"] = max(1, int(round(pr["list_size"] * total / listed)))
    elif abs(total - listed) > 0.005 * total:
        raise ConfigError(f"population.total ({total:,}) disagrees with the practices' lists, which sum to "
                          f"{listed:,}", file=file or str(p), field="population.total",
                          allowed="the sum of practices.list list sizes (within 0.5%)")
    _resolve_places(out)
    return out


def _resolve_places(eco: dict) -> None:
    """Every economy has places: none given means one place holding every practice, with the first
    commissioner and local authority. With one place, `commissioned_by` role words ('commissioner',
    'local_authority') become that place's organisations."""
    if not eco.get("places"):
        comm = next(o["id"] for o in eco["organisations"] if o["kind"] == "commissioner")
        la = next((o["id"] for o in eco["organisations"] if o["kind"] == "local_authority"), None)
        eco["places"] = [{"id": "all", "name": eco["name"], "commissioner": comm, "local_authority": la, "source": None}]
    if len(eco["places"]) == 1:
        only = eco["places"][0]
        for pr in eco["practices"]["list"]:
            pr["place"] = pr.get("place") or only["id"]
        cb = eco["commissioned_by"]["value"]
        for s, who in cb.items():
            if who in ("commissioner", "local_authority"):
                if only[who] is None:
                    raise ConfigError(f"commissioned_by.{s}: the place has no {who}", file=eco["_path"])
                cb[s] = only[who]


def load_arrangement(key: str, overrides: dict | None = None, file: str | None = None, economy: dict | None = None) -> dict:
    """Load and validate an arrangement definition by key (or a path to a YAML file)."""
    if key not in ARRANGEMENTS and not str(key).endswith((".yaml", ".yml")):
        raise ConfigError("unknown arrangement", file=file, field="arrangement", value=key, allowed=", ".join(ARRANGEMENTS))
    p = Path(key) if str(key).endswith((".yaml", ".yml")) else arrangement_path(key)
    data = read_yaml(p)
    skipped = []
    if overrides:
        data = copy.deepcopy(data)
        for k, v in overrides.items():
            top = k.split(".")[0]
            if top in Arrangement.model_fields and data.get(top) is None and "." in k:
                # e.g. arrangement.contract.contract_years under `fragmented`, which has no holder
                # contract: a term of another arrangement, not a typo, so it does not apply here
                skipped.append(k)
                continue
            _patch_nested(data, k, v, file or str(p), "arrangement")
    arr = _validated(Arrangement, data, file or str(p)).model_dump()
    arr["not_applicable"] = skipped
    if economy is not None:
        ids = {o["id"] for o in economy["organisations"]}
        _apply_aliases(arr, economy.get("aliases") or {})
        _apply_place_aliases(arr, economy)
        where = file or str(p)
        if arr["holder"] and arr["holder"]["org"] and arr["holder"]["org"] not in ids:
            raise ConfigError("unknown organisation", file=where, field="holder.org", value=arr["holder"]["org"],
                              allowed=", ".join(sorted(ids)))
        if arr["alliance"]:
            for m in arr["alliance"]["members"]:
                if m not in ids and m != "practices":
                    raise ConfigError("unknown organisation", file=where, field="alliance.members", value=m,
                                      allowed=", ".join(sorted(ids)) + ", or practices (every GP practice)")
            for m in arr["alliance"]["risk_shares"]:
                if m not in ids and m != "practices":
                    raise ConfigError("unknown organisation", file=where, field="alliance.risk_shares", value=m,
                                      allowed=", ".join(sorted(ids)))
        check_rules(arr, economy, where)
    return arr


def check_rules(arr: dict, economy: dict, where: str) -> None:
    """Rules the sources state, as validation:
    - an ICP contract can be held only by an NHS body (it "cannot be handed to a private provider":
      Health Service Journal on the ICP contract), and its subcontracting needs the commissioner's
      permission (NHS England, Draft ICP Contract consultation Q&A, 2018);
    - an alliance is an agreement over existing contracts between equal partners: a provider that only a
      council commissions can be a member only if that council is itself a party to the pooled budget."""
    orgs = {o["id"]: o for o in economy["organisations"]}
    hc = arr["contract"]
    if hc and hc["kind"] == "icp":
        h = arr["holder"]
        nhs = h["new"]["nhs_body"] if h["new"] else orgs[h["org"]]["nhs_body"]
        if not nhs:
            raise ConfigError("an ICP contract can be held only by an NHS body", file=where,
                              field="holder", value=h["org"] or h["new"]["id"],
                              allowed=", ".join(sorted(o for o, v in orgs.items() if v["nhs_body"] and v["kind"] not in ("funder", "commissioner"))))
        if not arr["subcontract_permission"]:
            raise ConfigError("ICP subcontracting needs the commissioner's permission", file=where,
                              field="subcontract_permission", value=False, allowed="true")
    al = arr["alliance"]
    if al:
        comm_of = economy["commissioned_by"]["value"]
        sp = economy["service_providers"]["value"]
        councils = {o for o, v in orgs.items() if v["kind"] == "local_authority"}
        for mem in al["members"]:
            if mem == "practices":
                continue
            payers = {comm_of[s] for s in sp if mem in sp[s]}
            outside = (payers & councils) - set(al["risk_shares"])
            if payers and payers <= councils and outside:
                raise ConfigError(f"alliance member '{mem}' is commissioned only by {', '.join(sorted(outside))}, "
                                  "which is not a party to the alliance pool (give it a risk share)", file=where,
                                  field="alliance.risk_shares", allowed=", ".join(sorted(outside)))


def _apply_aliases(arr: dict, aliases: dict[str, str]) -> None:
    """Rename the organisations an arrangement names (holder, alliance members and risk shares) to
    the economy's own, by the economy's `aliases`."""
    if not aliases:
        return
    if arr["holder"] and arr["holder"]["org"]:
        arr["holder"]["org"] = aliases.get(arr["holder"]["org"], arr["holder"]["org"])
    if arr["alliance"]:
        al = arr["alliance"]
        al["members"] = [aliases.get(m, m) for m in al["members"]]
        al["risk_shares"] = {aliases.get(m, m): x for m, x in al["risk_shares"].items()}


def _apply_place_aliases(arr: dict, economy: dict) -> None:
    """With several places whose `aliases` name each place's organisation for an arrangement id: the
    holder is the first place's (one holder spans the places); an alliance member or risk share stands
    for every place's, its share split by the places' registered populations."""
    places = [pl for pl in economy.get("places") or [] if pl.get("aliases")]
    if len(places) < 2:
        return
    ids = {o["id"] for o in economy["organisations"]}
    size = {pl["id"]: 0.0 for pl in places}
    for pr in economy["practices"]["list"]:
        if pr.get("place") in size:
            size[pr["place"]] += pr["list_size"]
    total = sum(size.values()) or 1.0
    h = arr["holder"]
    if h and h["org"] and h["org"] not in ids:
        h["org"] = places[0]["aliases"].get(h["org"], h["org"])
    if arr["alliance"]:
        al = arr["alliance"]
        members: list[str] = []
        for mem in al["members"]:
            for x in ([mem] if mem in ids or mem == "practices" else [pl["aliases"].get(mem, mem) for pl in places]):
                if x not in members:
                    members.append(x)
        al["members"] = members
        shares: dict[str, float] = {}
        for mem, x in al["risk_shares"].items():
            if mem in ids or mem == "practices":
                shares[mem] = shares.get(mem, 0.0) + x
                continue
            for pl in places:
                o = pl["aliases"].get(mem, mem)
                shares[o] = shares.get(o, 0.0) + x * size[pl["id"]] / total
        al["risk_shares"] = shares


def resolve(arrangement: str, economy: str | Path | dict | None = None, overrides: dict | None = None,
            file: str | None = None) -> dict:
    """Everything a model needs, resolved and validated: parameters, economy, arrangement."""
    ov = normalise_override_names(overrides)
    par, arr_ov, eco_ov = split_overrides(ov)
    tree = apply_parameter_overrides(default_parameters(), par, file)
    eco = economy if isinstance(economy, dict) else load_economy(economy, eco_ov, file=file)
    arr = load_arrangement(arrangement, arr_ov, file=file, economy=eco)
    return {"parameters": tree, "params": values(tree), "economy": eco, "arrangement": arr}


def config_hash(obj: Any) -> str:
    """sha256 of a canonical JSON dump: the identity of a resolved configuration."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
