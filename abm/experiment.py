"""Experiments: the YAML schema, the task list, seeds, and `run_experiment`.

An experiment compares arrangements over replicates (and optional sweep points). Each task is one
(arrangement, point, replicate) run. Replicate r at point p gets the same seed under every
arrangement (common random numbers), derived only from the base seed, p and r, so results do not
depend on which engine or how many workers ran them.

With `risk_sources:` the runner adds paired runs (abm.risk): for the first `risk_replications`
replicates of each (arrangement, point), the same seed with one source perturbed up and down.
Their per-run records (system cost, each party's result) go to risk_runs.csv and their
incidence to risk_incidence.csv; their time series are not stored.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from abm import catalogue, params, risk
from abm.definitions import CUMULATIVE_METRICS, DEFAULT_BASELINE, FINAL_YEAR_STEPS, PARTIES
from abm.errors import ConfigError, did_you_mean

__all__ = ["Experiment", "load_experiment", "run_experiment", "build_tasks", "replicate_seed",
           "PARTIES", "CUMULATIVE_METRICS", "FINAL_YEAR_STEPS"]

MAX_MONTHS = 600
DEFAULT_MODEL = "abm.model:ContractingModel"
STOP_AFTER_ENV = "ABM_TEST_STOP_AFTER"  # test hook: exit abruptly after k tasks are stored


# --------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Shock(_Strict):
    """A scenario shock; the model interprets kind and size (see abm.params.SHOCK_KINDS)."""
    kind: str = Field(description="shock kind, one of abm.params.SHOCK_KINDS")
    month: int = Field(ge=1, description="month the shock starts (1 = first simulated month)")
    size: float = Field(description="size of the shock, in the unit the kind defines")
    duration: int | None = Field(default=None, ge=1, description="months it lasts; none = rest of run")
    service: str | list[str] | None = Field(default=None, description="demand_surge only: the service(s) it applies to")


class ParamRange(_Strict):
    """One uncertain parameter: `low`/`high` bounds, or explicit grid `values`."""
    low: float | None = Field(default=None, description="lower bound (lhs, sobol, grid with levels)")
    high: float | None = Field(default=None, description="upper bound")
    values: list[Any] | None = Field(default=None, min_length=1, description="grid values")
    levels: int | None = Field(default=None, ge=2, description="grid: evenly spaced values low..high")
    integer: bool = Field(default=False, description="round sampled values to integers")

    @model_validator(mode="after")
    def _bounds(self):
        if self.values is None and (self.low is None or self.high is None):
            raise ValueError("give either 'values' or both 'low' and 'high'")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
        return self

    def grid_values(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        vals = np.linspace(self.low, self.high, self.levels or 3)
        return [int(round(v)) if self.integer else float(v) for v in vals]


class Uncertainties(_Strict):
    """Parameters to sweep and how to sample them."""
    method: Literal["grid", "lhs", "sobol"] = Field(description="sampling design")
    samples: int | None = Field(default=None, ge=1,
                                description="lhs: points; sobol: base sample N (N*(D+2) points)")
    seed: int | None = Field(default=None, ge=0, description="sampling seed; default = experiment seed")
    parameters: dict[str, ParamRange] = Field(min_length=1, description="dotted name -> range")
    defaults: int = Field(default=0, ge=0, le=1000,
                          description="extra points at the default parameters (no sweep "
                                      "changes), appended after the sampled points; the "
                                      "robustness table (abm.robustness) takes the sign of "
                                      "each comparison at the defaults from them")

    @model_validator(mode="after")
    def _design(self):
        if self.method != "grid":
            if self.samples is None:
                raise ValueError(f"method '{self.method}' needs 'samples'")
            if self.method == "sobol" and self.samples & (self.samples - 1):
                raise ValueError(f"sobol 'samples' must be a power of 2 (got {self.samples}), "
                                 "e.g. 64, 128, 256: Sobol' sequences balance only then")
            for name, p in self.parameters.items():
                if p.low is None or p.high is None:
                    raise ValueError(f"method '{self.method}' needs 'low' and 'high' for '{name}'")
        return self


class Experiment(_Strict):
    """An experiment file."""
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="names the output folder")
    description: str = Field(default="", description="free text for the report")
    economy: str = Field(default="default", description="'default' or path to an economy YAML")
    economies: list[Any] | None = Field(default=None, description="a study across economies: "
                                        "a list of 'default', paths to economy YAMLs, or "
                                        "mappings {name, file}; results gain an economy column")
    arrangements: list[str] = Field(description="arrangements to compare: shipped keys or paths "
                                                "to user-written arrangement YAML files")
    baseline: str | None = Field(default=None, description="arrangement paired differences are "
                                 "taken from; default fragmented when it is compared")
    replications: int = Field(ge=1, description="replicates per arrangement and point")
    seed: int = Field(ge=0, description="base seed; replicate seeds derive from it")
    months: int = Field(ge=1, le=MAX_MONTHS, description="horizon in months")
    population_scale: float = Field(default=1.0, gt=0, le=1, description="fraction of population simulated")
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted parameter -> value")
    shocks: list[Shock] = Field(default_factory=list, description="scenario shocks")
    uncertainties: Uncertainties | None = Field(default=None, description="parameters to sweep")
    risk_sources: list[Any] = Field(default_factory=list, description="risk sources for paired "
                                    "incidence runs: names or {source, size, service, month, "
                                    "duration} (abm.risk.SOURCES)")
    risk_replications: int | None = Field(default=None, ge=1, description="replicates with paired "
                                          "risk-source runs (at most replications; default all)")


_HELP = {
    "name": "text of letters, digits, '_', '-', '.'",
    "description": "text",
    "economy": "'default' or a path to an economy YAML file",
    "economies": "a non-empty list of 'default', paths to economy YAML files, or mappings "
                 "{name, file} (each economy once; names of letters, digits, '_', '-')",
    "arrangements": "a non-empty list of shipped keys (" + ", ".join(params.ARRANGEMENTS)
                    + ") or paths to arrangement YAML files",
    "baseline": "one of the experiment's arrangement keys",
    "replications": "an integer >= 1",
    "seed": "an integer >= 0",
    "months": f"an integer from 1 to {MAX_MONTHS}",
    "population_scale": "a number > 0 and <= 1",
    "overrides": "a mapping of dotted parameter names to values",
    "shocks": "a list of mappings with kind, month, size and optional duration",
    "shocks.month": "an integer month from 1 to the horizon",
    "shocks.size": "a number",
    "shocks.duration": "an integer >= 1 (months)",
    "uncertainties": "a mapping with method, samples, seed, parameters",
    "uncertainties.method": "grid, lhs or sobol",
    "uncertainties.samples": "an integer >= 1",
    "uncertainties.parameters": "a mapping of dotted names to {low, high} or {values}",
    "risk_sources": "a list of source names (" + ", ".join(risk.SOURCE_NAMES)
                    + ") or mappings {source, size, service, month, duration}",
    "risk_replications": "an integer >= 1 (at most replications are used)",
}
RISK_SOURCE_KEYS = ("source", "size", "service", "month", "duration", "directions")


# --------------------------------------------------------------------------- loading
def default_experiment_path() -> Path:
    """The packaged default experiment; in an editable install, the repo's experiments/ copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / "experiments" / "compare.yaml",
                      here.parent / "experiments" / "compare.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("default experiment not found; reinstall the package",
                      file=str(here / "_data" / "experiments" / "compare.yaml"))


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, turning every failure into a one-line ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("file not found", file=str(path))
    if not path.is_file():
        raise ConfigError("not a file", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=str(path)) from None
    try:
        from abm.params import load_yaml_text
        return load_yaml_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"YAML syntax error{where}: {problem}", file=str(path)) from None


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _keys_at(loc: tuple) -> list[str]:
    """Allowed keys of the mapping that holds loc[-1] (for unknown-key messages)."""
    parent = [p for p in loc[:-1] if not isinstance(p, int)]
    if parent[:1] == ["shocks"]:
        return list(Shock.model_fields)
    if parent[:1] == ["risk_sources"]:
        return list(RISK_SOURCE_KEYS)
    if parent[:1] == ["uncertainties"]:
        return list(ParamRange.model_fields if len(parent) >= 3 else Uncertainties.model_fields)
    return list(Experiment.model_fields)


def _help_for(loc: tuple) -> str | None:
    names = [p for p in loc if not isinstance(p, int)]
    if names[:2] == ["uncertainties", "parameters"] and len(names) > 2:
        return "{low, high} bounds (low < high), or a list of values"
    return _HELP.get(".".join(names[:2])) or _HELP.get(str(names[0]) if names else "")


def _from_validation(exc: ValidationError, file: str) -> ConfigError:
    """The most useful single error: unknown keys first (they often explain a 'missing')."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc, field = tuple(err["loc"]), _field_path(tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        keys = _keys_at(loc)
        hint = did_you_mean(str(loc[-1]), keys)
        return ConfigError(f"unknown key '{loc[-1]}'" + (f"; {hint}" if hint else ""),
                           file=file, field=field, allowed=", ".join(keys))
    if err["type"] == "missing":
        return ConfigError("required field missing", file=file, field=field, allowed=_help_for(loc))
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (dict, list)) and err["type"] == "value_error":
        value = None  # model-level checks name the offending part in the message
    return ConfigError(msg, file=file, field=field, value=value, allowed=_help_for(loc))


def _check_overrides(overrides: dict, arrangements: list[str], file: str, field: str) -> None:
    """Ask the parameter layer whether overrides are valid under each compared arrangement
    (names, ranges, shares summing to 1); report the error against the experiment file and the
    override that caused it."""
    if not overrides:
        return
    try:
        for arrangement in arrangements:
            params.validate_overrides(dict(overrides), arrangement=arrangement)
        params.check_overrides_apply(dict(overrides), arrangements)
    except ConfigError as exc:
        raise _blame_override(exc, list(overrides), file, field) from None


def _blame_override(exc: ConfigError, keys: list[str], file: str, prefix: str) -> ConfigError:
    inner = (exc.field or "").replace("__", ".")
    names = [k.replace("__", ".") for k in keys]
    match = next((k for k in names if k == inner or k.startswith(inner + ".")
                  or inner.startswith(k + ".") or k in (f"arrangement.{inner}", f"economy.{inner}")
                  or k.startswith((f"arrangement.{inner}.", f"economy.{inner}."))), None)
    exc.field = f"{prefix}.{match or inner}" if (match or inner) else prefix
    exc.file = file
    exc.args = (exc.line(),)
    return exc


def _resolve_economy(value: str, base: Path, file: str) -> str:
    if value == "default":
        return "default"
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [base / path, Path.cwd() / path]
    for cand in candidates:
        if cand.is_file():
            try:
                params.load_economy(str(cand.resolve()))
            except ConfigError as exc:
                raise exc.with_file(str(cand)) from None
            return str(cand.resolve())
    raise ConfigError("economy file not found", file=file, field="economy", value=value,
                      allowed=_HELP["economy"])


ECONOMY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ECONOMY_KEYS = ("name", "file")


def _economy_name(path: str) -> str:
    """A study's name for an economy given by its file: the file name without .yaml, as a name
    (letters, digits, '_', '-')."""
    return "default" if path == "default" else re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem).strip("_-") or "economy"


def _resolve_economies(entries: Any, base: Path, file: str, single: str) -> list[dict] | None:
    """`economies:` as [{name, file}] (file 'default' or an absolute path), every entry checked:
    a list, each a name or a mapping with a file that loads, no economy or name twice."""
    if entries is None:
        return None
    allowed = _HELP["economies"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError("economies must be a non-empty list", file=file, field="economies",
                          value=entries if not isinstance(entries, (dict, list)) else type(entries).__name__,
                          allowed=allowed)
    if single != "default":
        raise ConfigError("give either economy or economies, not both", file=file, field="economy",
                          value=single, allowed="leave economy out and list every economy under economies")
    out: list[dict] = []
    seen_names: dict[str, int] = {}
    seen_files: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"economies[{i}]"
        name = None
        if isinstance(entry, dict):
            for key in entry:
                if key not in ECONOMY_KEYS:
                    hint = did_you_mean(str(key), ECONOMY_KEYS)
                    raise ConfigError(f"unknown key '{key}'" + (f"; {hint}" if hint else ""), file=file,
                                      field=f"{where}.{key}", allowed=", ".join(ECONOMY_KEYS))
            if "file" not in entry:
                raise ConfigError("required field missing", file=file, field=f"{where}.file",
                                  allowed="'default' or a path to an economy YAML file")
            name, entry = entry.get("name"), entry["file"]
            if name is not None and (not isinstance(name, str) or not ECONOMY_NAME.match(name)):
                raise ConfigError("bad economy name", file=file, field=f"{where}.name", value=name,
                                  allowed="letters, digits, '_' and '-', starting with a letter or digit")
            where = f"{where}.file"
        if not isinstance(entry, str) or not entry:
            raise ConfigError("an economy is a file name or a mapping {name, file}", file=file,
                              field=where, value=entry if not isinstance(entry, (dict, list)) else None,
                              allowed=allowed)
        try:
            path = _resolve_economy(entry, base, file)
        except ConfigError as exc:
            if exc.field == "economy":
                exc.field, exc.allowed = where, allowed
                exc.args = (exc.line(),)
            raise
        name = name or _economy_name(path)
        same = str(params.default_economy_path().resolve()) if path == "default" else path
        if same in seen_files:
            raise ConfigError(f"economy listed twice (as economies[{seen_files[same]}] too)", file=file,
                              field=where, value=entry, allowed="each economy file once ('default' is "
                              + params.default_economy_path().name + ")")
        if name in seen_names:
            raise ConfigError(f"two economies named '{name}' (economies[{seen_names[name]}] too)", file=file,
                              field=f"economies[{i}]", value=name,
                              allowed="a distinct name for each: {name: NAME, file: PATH}")
        seen_files[same], seen_names[name] = i, i
        out.append({"name": name, "file": path})
    return out


def economy_list(exp: "Experiment") -> list[tuple[str | None, str | None]]:
    """(name, file) of every economy the experiment runs: for a single `economy:`, one entry
    whose name is None (outputs carry no economy column); file None is the default economy."""
    if exp.economies is None:
        return [(None, None if exp.economy == "default" else exp.economy)]
    out = []
    for e in exp.economies:
        name, f = (e["name"], e["file"]) if isinstance(e, dict) else (_economy_name(e), e)
        out.append((name, None if f == "default" else f))
    return out


MAX_RUNS = 100_000   # a larger study is almost certainly a typo (1e9 replications would fill the disk)


def _semantic_checks(exp: Experiment, file: str) -> None:
    if not exp.arrangements:
        raise ConfigError("empty arrangement list", file=file, field="arrangements",
                          value=[], allowed=_HELP["arrangements"])
    kinds = params.SHOCK_KINDS
    for i, shock in enumerate(exp.shocks):
        if shock.kind not in kinds:
            hint = did_you_mean(shock.kind, kinds)
            raise ConfigError("unknown shock kind" + (f"; {hint}" if hint else ""), file=file,
                              field=f"shocks[{i}].kind", value=shock.kind, allowed=", ".join(kinds))
        if shock.month > exp.months:
            raise ConfigError("shock starts after the horizon", file=file,
                              field=f"shocks[{i}].month", value=shock.month,
                              allowed=f"a month from 1 to {exp.months} (months)")
        if not _number(shock.size) or not -1 < shock.size <= 5:      # as the model checks it
            raise ConfigError("shock size must be a finite relative change above -1", file=file,
                              field=f"shocks[{i}].size", value=shock.size, allowed="a number in (-1, 5]")
        if shock.kind == "quality_fall" and not 0 <= shock.size <= 1:
            raise ConfigError("a quality fall is a drop in quality", file=file, field=f"shocks[{i}].size",
                              value=shock.size, allowed="0 to 1")
    n_eco = len(exp.economies) if isinstance(exp.economies, list) and exp.economies else 1
    runs = exp.replications * len(exp.arrangements) * n_eco
    if runs > MAX_RUNS:
        per = len(exp.arrangements) * n_eco
        raise ConfigError(f"{runs:,} runs (replications x arrangements"
                          + (" x economies" if n_eco > 1 else "") + ") before any sweep", file=file,
                          field="replications", value=exp.replications,
                          allowed=f"at most {MAX_RUNS // per:,} with {len(exp.arrangements)} arrangements"
                                  + (f" and {n_eco} economies" if n_eco > 1 else ""))
    _check_risk_sources(exp.risk_sources, file)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def _check_risk_sources(entries: list, file: str) -> None:
    """Each entry a known source (once), with a size the model accepts in both directions."""
    names = risk.SOURCE_NAMES
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"risk_sources[{i}]"
        if isinstance(entry, str):
            entry = {"source": entry}
        if not isinstance(entry, dict):
            raise ConfigError("a risk source is a name or a mapping", file=file, field=where,
                              value=entry, allowed=_HELP["risk_sources"])
        for key in entry:
            if key not in RISK_SOURCE_KEYS:
                hint = did_you_mean(str(key), RISK_SOURCE_KEYS)
                raise ConfigError(f"unknown key '{key}'" + (f"; {hint}" if hint else ""),
                                  file=file, field=f"{where}.{key}",
                                  allowed=", ".join(RISK_SOURCE_KEYS))
        name = entry.get("source")
        if name is None:
            raise ConfigError("required field missing", file=file, field=f"{where}.source",
                              allowed=", ".join(names))
        if name not in names:
            hint = did_you_mean(str(name), names)
            raise ConfigError("unknown risk source" + (f"; {hint}" if hint else ""), file=file,
                              field=f"{where}.source", value=name, allowed=", ".join(names))
        if name in seen:
            raise ConfigError("risk source listed twice", file=file, field=f"{where}.source",
                              value=name, allowed="each source at most once")
        seen.add(name)
        kind = risk.SOURCES[name]["kind"]
        if "size" in entry:
            size, top = entry["size"], (1.0 if kind == "quality_fall" else 0.99 if kind in (
                "demand_surge", "cost_inflation", "efficiency_shortfall") else 0.5)
            if not _number(size) or not 0 < size <= top:
                raise ConfigError("size must be a positive number (the source is perturbed up "
                                  "and down by it)", file=file, field=f"{where}.size", value=size,
                                  allowed=f"a number > 0 and <= {top:g} ({risk.SOURCES[name]['unit']})")
        if "month" in entry:
            month = entry["month"]
            if isinstance(month, bool) or not isinstance(month, int) or month < 1:
                raise ConfigError("month must be a whole month >= 1", file=file,
                                  field=f"{where}.month", value=month,
                                  allowed="an integer >= 1 (default "
                                          f"{risk.SOURCES[name]['month']})")
        if "directions" in entry:
            dirs, have = entry["directions"], risk.SOURCES[name]["directions"]
            if (not isinstance(dirs, list) or not dirs or len(set(dirs)) != len(dirs)
                    or any(d not in have for d in dirs)):
                raise ConfigError("directions must be a non-empty list of the source's directions",
                                  file=file, field=f"{where}.directions", value=dirs,
                                  allowed=", ".join(have))
        if "duration" in entry and entry["duration"] is not None:
            dur = entry["duration"]
            if isinstance(dur, bool) or not isinstance(dur, int) or dur < 1:
                raise ConfigError("duration must be a whole number of months >= 1", file=file,
                                  field=f"{where}.duration", value=dur,
                                  allowed="an integer >= 1, or leave out for the rest of the run")
        if "service" in entry:
            service = entry["service"]
            group = [service] if isinstance(service, str) else service
            if name != "usage_mix":
                raise ConfigError("only usage_mix takes a service (activity is every service)",
                                  file=file, field=f"{where}.service", value=service,
                                  allowed="leave out, or use source usage_mix")
            if not isinstance(group, list) or not group or any(
                    not isinstance(x, str) or x not in params.SERVICES for x in group):
                raise ConfigError("unknown service", file=file, field=f"{where}.service",
                                  value=service, allowed="a service or list of: "
                                                         + ", ".join(params.SERVICES))


def load_experiment(source: str | Path | dict | Experiment,
                    cli_overrides: dict | None = None) -> tuple[Experiment, str]:
    """Validate an experiment (file, mapping or model); returns it and the file name used in
    messages. Relative economy paths resolve against the experiment file's folder."""
    if isinstance(source, Experiment):
        data, file, base = source.model_dump(), "<experiment>", Path.cwd()
    elif isinstance(source, dict):
        data, file, base = dict(source), "<experiment>", Path.cwd()
    else:
        file, base = str(source), Path(source).resolve().parent
        data = read_yaml(source)
        if data is None:
            raise ConfigError("file is empty", file=file, allowed="a mapping of experiment keys")
        if not isinstance(data, dict):
            raise ConfigError("top level must be a mapping", file=file,
                              value=type(data).__name__, allowed="a mapping of experiment keys")
    cli = {k: v for k, v in (cli_overrides or {}).items() if v is not None}
    data.update(cli)
    try:
        try:
            exp = Experiment.model_validate(data)
        except ValidationError as exc:
            raise _from_validation(exc, file) from None
        _semantic_checks(exp, file)
    except ConfigError as exc:
        root = (exc.field or "").split(".")[0].split("[")[0]
        if root in cli:  # the bad value came from the command line, not the file
            exc.file, exc.field = "command line", f"--{root}"
            exc.args = (exc.line(),)
        raise
    economy = _resolve_economy(exp.economy, base, file)
    economies = _resolve_economies(exp.economies, base, file, economy)
    for i, eco_file in enumerate([e["file"] for e in economies] if economies else [economy]):
        # each arrangement file is checked against every economy it will run in
        eco = params.load_economy(None if eco_file == "default" else eco_file)
        entries = catalogue.resolve(exp.arrangements, base=base, file=file, economy=eco)
        _check_people(eco, exp.population_scale, file, economies[i]["name"] if economies else None)
    baseline = _resolve_baseline(exp, entries, file)
    exp = exp.model_copy(update={"economy": economy, "economies": economies, "baseline": baseline,
                                 "arrangements": [e.source for e in entries]})
    _check_overrides(exp.overrides, exp.arrangements, file, "overrides")
    _check_sweep(exp, file)
    return exp, file


def _check_people(eco: dict, scale: float, file: str, name: str | None) -> None:
    """As the model refuses it (before any run): a scale that simulates too few people."""
    try:
        from abm.model import MIN_PEOPLE
    except ImportError:            # pragma: no cover - the model is part of the package
        return
    total = eco["population"]["total"]["value"]
    if total * scale < MIN_PEOPLE:
        where = f" of economy '{name}'" if name else ""
        raise ConfigError(f"population_scale simulates only {total * scale:.0f} people{where}", file=file,
                          field="population_scale", value=scale,
                          allowed=f"at least {MIN_PEOPLE / total:.2g} (>= {MIN_PEOPLE} people)")


def _resolve_baseline(exp: Experiment, entries: list, file: str) -> str | None:
    """The key paired differences are taken from: the file's `baseline:` (a key, or an entry as
    written in `arrangements:`), else `fragmented` when it is compared, else none."""
    keys = [e.key for e in entries]
    if exp.baseline is None:
        return DEFAULT_BASELINE if DEFAULT_BASELINE in keys else None
    if exp.baseline in keys:
        return exp.baseline
    for raw, e in zip(exp.arrangements, entries):
        if exp.baseline == raw:
            return e.key
    hint = did_you_mean(exp.baseline, keys)
    raise ConfigError("baseline is not one of the experiment's arrangements"
                      + (f"; {hint}" if hint else ""), file=file, field="baseline",
                      value=exp.baseline, allowed=", ".join(keys))


def arrangement_entries(exp: Experiment) -> list:
    """The catalogue Entry of each compared arrangement (key, label, definition file)."""
    out = []
    for source in exp.arrangements:
        if catalogue.is_path(source):
            out.append(catalogue.load_file(source))
        else:
            out.append(catalogue.shipped().get(source) or catalogue.Entry(
                source, catalogue.label(source), "", True))
    return out


def baseline_of(exp: Experiment) -> str | None:
    """The experiment's baseline key (as load_experiment resolved it; for an Experiment built
    directly, `fragmented` when it is compared)."""
    if exp.baseline is not None:
        return exp.baseline
    keys = [catalogue.key_of(a) for a in exp.arrangements]
    return DEFAULT_BASELINE if DEFAULT_BASELINE in keys else None


def _check_sweep(exp: Experiment, file: str) -> None:
    """Check each swept parameter at its bounds (or each grid value), on top of the overrides."""
    if exp.uncertainties is None:
        return
    for name, spec in exp.uncertainties.parameters.items():
        where = f"uncertainties.parameters.{name}"
        probes = ([(f"values[{i}]", v) for i, v in enumerate(spec.values)] if spec.values is not None
                  else [("low", spec.low), ("high", spec.high)])
        for part, value in probes:
            if spec.integer and isinstance(value, float):
                value = int(round(value))
            try:
                _check_overrides({**exp.overrides, name: value}, exp.arrangements, file,
                                 "uncertainties.parameters")
            except ConfigError as exc:
                if exc.field == where:
                    exc.field = f"{where}.{part}"
                    exc.args = (exc.line(),)
                raise


# --------------------------------------------------------------------------- plan
def plan_points(exp: Experiment) -> list[dict[str, Any]]:
    from abm.sampling import sample_points
    return sample_points(exp.uncertainties, exp.seed)


def replicate_seed(base_seed: int, point: int, replicate: int) -> int:
    """Seed for (point, replicate): same under every arrangement, independent of the engine."""
    ss = np.random.SeedSequence(base_seed, spawn_key=(point, replicate))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def task_key(arrangement: str, point: int, replicate: int, source: str | None = None,
             direction: str | None = None) -> str:
    key = f"{arrangement}-p{point:05d}-r{replicate:05d}"
    return key if source is None else f"{key}-{source}-{direction}"


def fingerprint(exp: Experiment) -> str:
    """sha256 of the resolved configuration (canonical JSON)."""
    text = json.dumps(exp.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def build_tasks(exp: Experiment, points: list[dict], model: str = DEFAULT_MODEL) -> list[dict]:
    """Task specs in canonical order (economy, arrangement, point, replicate); each is picklable.
    Replicate r at point p has the same seed in every economy and under every arrangement."""
    shocks = [s.model_dump(exclude_none=True) for s in exp.shocks] or None
    keys = [catalogue.key_of(a) for a in exp.arrangements]
    return [{"key": economy_key(name, task_key(a, p, r)), "experiment": exp.name,
             "economy_name": name, "arrangement": a, "arrangement_source": source, "point": p,
             "replicate": r, "seed": replicate_seed(exp.seed, p, r), "economy": economy,
             "population_scale": exp.population_scale, "months": exp.months, "shocks": shocks,
             "overrides": {**exp.overrides, **point}, "model": model}
            for name, economy in economy_list(exp)
            for a, source in zip(keys, exp.arrangements) for p, point in enumerate(points)
            for r in range(exp.replications)]


def economy_key(name: str | None, key: str) -> str:
    """A task's key in a study across economies: '<economy>.<key>' (names hold no '.')."""
    return key if name is None else f"{name}.{key}"


def risk_specs(exp: Experiment) -> list[dict]:
    """The experiment's risk sources, resolved with their defaults (abm.risk.resolve)."""
    return risk.resolve(exp.risk_sources)


def risk_replications(exp: Experiment) -> int:
    """Replicates with paired risk-source runs: `risk_replications`, at most `replications`."""
    return min(exp.replications, exp.risk_replications or exp.replications)


def build_risk_tasks(exp: Experiment, points: list[dict], model: str = DEFAULT_MODEL) -> list[dict]:
    """Paired risk-source runs: for each arrangement, point, source the model can represent within
    the horizon, direction and replicate r < risk_replications, the base task's spec (same seed,
    same people) with the source's shock added to the experiment's shocks."""
    specs = risk.runnable(risk_specs(exp), exp.months)
    if not specs:
        return []
    reps = risk_replications(exp)
    base_shocks = [s.model_dump(exclude_none=True) for s in exp.shocks]
    keys = [catalogue.key_of(a) for a in exp.arrangements]
    return [{"key": economy_key(name, task_key(a, p, r, spec["source"], d)), "experiment": exp.name,
             "economy_name": name, "arrangement": a, "arrangement_source": source, "point": p,
             "replicate": r, "seed": replicate_seed(exp.seed, p, r), "economy": economy,
             "population_scale": exp.population_scale, "months": exp.months,
             "shocks": base_shocks + [risk.shock(spec, d)], "overrides": {**exp.overrides, **point},
             "model": model, "source": spec["source"], "direction": d}
            for name, economy in economy_list(exp)
            for a, source in zip(keys, exp.arrangements) for p, point in enumerate(points)
            for spec, d in specs for r in range(reps)]


def execution_order(tasks: list[dict]) -> list[dict]:
    """Replicate-major order, so a partial run holds complete comparisons across arrangements."""
    return sorted(tasks, key=lambda t: (t["replicate"], t["point"], t.get("economy_name") or "", t["key"]))


# --------------------------------------------------------------------------- one task
def _factory(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_model(spec: dict):
    kwargs = {k.replace(".", "__"): v for k, v in spec["overrides"].items()}
    arrangement = spec.get("arrangement_source", spec["arrangement"])
    return _factory(spec["model"])(arrangement=arrangement, economy=spec["economy"],
                                   rng=spec["seed"], population_scale=spec["population_scale"],
                                   shocks=spec["shocks"], **kwargs)


def final_year_values(frame) -> dict[str, float]:
    """Final-year value per metric: last step for cumulative metrics, else the mean of the last
    12 monthly steps (row 0, the initial state, is never included)."""
    months = frame.iloc[1:] if len(frame) > 1 else frame
    tail = months.iloc[-FINAL_YEAR_STEPS:]
    return {str(c): float(months[c].iloc[-1] if c in CUMULATIVE_METRICS else tail[c].mean())
            for c in frame.columns}


class TaskConfigError(ConfigError):
    """A ConfigError that keeps its file, field, value and allowed values across processes."""

    def __reduce__(self):
        return (_rebuild_config_error, (self.detail, self.file, self.field, self.value, self.allowed))


def _rebuild_config_error(detail, file, field, value, allowed):
    return TaskConfigError(detail, file=file, field=field, value=value, allowed=allowed)


def run_task(spec: dict) -> dict:
    """Run one (arrangement, point, replicate) and return its tidy results (runs in a worker)."""
    try:
        return _run_task(spec)
    except ConfigError as exc:
        raise TaskConfigError(exc.detail, file=exc.file, field=exc.field, value=exc.value,
                              allowed=exc.allowed) from None


def _holder_and_term(model, months: int) -> tuple[str | None, int]:
    """The holder's id at the start (None without one) and the term in months: the holder
    contract's, else an alliance agreement's, else the horizon (never beyond it)."""
    holder = getattr(model, "holder", None)
    arr = getattr(model, "arr", None) or {}
    years = ((arr.get("contract") or {}).get("contract_years") if arr.get("holder")
             else (arr.get("alliance") or {}).get("contract_years"))
    term = min(months, int(12 * years)) if years else months
    return (getattr(holder, "org_id", None) if holder is not None else None), term


def _failures(model) -> list[dict]:
    """Failure events (their `event` starts with "failure") with the failed organisation's party."""
    out = []
    for e in getattr(model, "events", None) or []:
        if str(e.get("event", "")).startswith("failure"):
            org = getattr(model, "org_by_id", {}).get(e.get("org"))
            party = model.party(org) if org is not None and hasattr(model, "party") else None
            out.append({"month": int(e.get("month", 0)), "org": e.get("org"), "party": party,
                        "event": str(e["event"])})
    return out


def _party_totals(records) -> dict[str, float]:
    totals = {p: 0.0 for p in PARTIES}
    for row in records:
        if row.get("party") in totals:
            totals[row["party"]] += float(row["surplus"])
    return totals


def _run_task(spec: dict) -> dict:
    import pandas as pd
    t0, cpu0 = time.perf_counter(), time.process_time()
    model = make_model(spec)
    holder, term = _holder_and_term(model, spec["months"])
    for _ in range(spec["months"]):
        model.step()
    eco = {"economy": spec["economy_name"]} if spec.get("economy_name") is not None else {}
    if spec.get("source"):  # a paired risk-source run: its money and failures, no time series
        ids = {**eco, "arrangement": spec["arrangement"], "point": spec["point"],
               "replicate": spec["replicate"], "seed": spec["seed"], "source": spec["source"],
               "direction": spec["direction"]}
        meta = {"key": spec["key"], **ids, "system_cost": float(model.system_cost_total()),
                "party_results": _party_totals(model.finance_records(include_partial=True)),
                "holder": holder, "term_months": term, "failures": _failures(model),
                "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0}
        return {"key": spec["key"], "results": None, "finance": None, "meta": meta}
    frame = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    frame = frame.apply(pd.to_numeric, errors="coerce").astype("float64")
    ids = {**eco, "arrangement": spec["arrangement"], "point": spec["point"],
           "replicate": spec["replicate"], "seed": spec["seed"]}
    steps = np.repeat(np.arange(len(frame), dtype="int64"), frame.shape[1])
    results = pd.DataFrame({"experiment": spec["experiment"], **ids, "step": steps,
                            "metric": np.tile(np.asarray(frame.columns, dtype=object), len(frame)),
                            "value": frame.to_numpy(dtype="float64").reshape(-1)})
    finance = pd.DataFrame(model.finance_records(include_partial=True))
    for col, val in reversed(ids.items()):
        finance.insert(0, col, val)
    parties = (finance.groupby("party")["surplus"].sum() if len(finance) else pd.Series(dtype=float))
    meta = {"key": spec["key"], **ids, "system_cost": float(model.system_cost_total()),
            "party_results": {p: float(parties.get(p, 0.0)) for p in PARTIES},
            "final": final_year_values(frame), "holder": holder, "term_months": term,
            "failures": _failures(model), "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0}
    return {"key": spec["key"], "results": results, "finance": finance, "meta": meta}


# --------------------------------------------------------------------------- run
def _versions(engine: str) -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version
    import abm
    out = {"abm": getattr(abm, "__version__", "unknown"), "python": platform.python_version()}
    for dist in ("mesa", "numpy", "pandas", "pyarrow", "SALib") + (("dask", "distributed")
                                                                      if engine == "dask" else ()):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def initial_networks(exp: Experiment, points: list[dict], model: str = DEFAULT_MODEL,
                     file: str = "<experiment>") -> dict:
    """Each arrangement's month-0 contract network (replicate 0, point 0). Building the models
    here also surfaces model-level ConfigErrors before any output directory exists."""
    graphs = {}
    for spec in build_tasks(exp.model_copy(update={"replications": 1}), points[:1], model):
        name = spec["arrangement"] if spec["economy_name"] is None else \
            f"{spec['economy_name']}/{spec['arrangement']}"   # networks/<economy>/<arrangement>
        try:
            graphs[name] = make_model(spec).initial_contracts
        except ConfigError as exc:
            raise exc.with_file(file) from None
    return graphs


def run_experiment(path_or_config=None, out: str | Path | None = None, engine: str = "local",
                   workers: int | None = None, *, scheduler: str | None = None,
                   resume: str | Path | None = None, cli_overrides: dict | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   log: Callable[[str], None] | None = None, model: str = DEFAULT_MODEL,
                   overwrite: bool = False) -> Path:
    """Run an experiment (file, mapping or Experiment) and return the output directory.

    With `resume`, continue the interrupted run whose --out was that directory, skipping stored
    tasks; the configuration then comes from the stored run unless one is given (it must match).
    """
    from abm import engines, store, summary

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    log = log or (lambda msg: None)
    if engine not in ("local", "dask"):
        raise ConfigError("unknown engine", field="--engine", value=engine, allowed="local, dask")
    if workers is not None and workers < 1:
        raise ConfigError("workers must be at least 1", field="--workers", value=workers,
                          allowed="an integer >= 1")
    run = store.locate_resume(resume) if resume is not None else None
    if path_or_config is None and run is None:
        path_or_config = default_experiment_path()
    if path_or_config is None:
        exp, file = load_experiment(run.stored_config(), cli_overrides)
        file = str(run.partial / store.RUN_FILE)
    else:
        exp, file = load_experiment(path_or_config, cli_overrides)
    points = plan_points(exp)
    base_tasks = build_tasks(exp, points, model)
    tasks = base_tasks + build_risk_tasks(exp, points, model)
    arrangements = arrangement_manifest(exp)  # user files as they are when the run starts
    graphs = initial_networks(exp, points, model, file)
    fp = fingerprint(exp)
    inputs = input_files(exp)
    if run is None:
        target = Path(out) if out is not None else Path("reports") / exp.name
        run = store.RunStore.create(target, exp.model_dump(mode="json"), fp, source=file,
                                    source_sha256=_file_sha(file), started=started.isoformat(),
                                    overwrite=overwrite, inputs=inputs)
    else:
        try:
            run.check_fingerprint(fp)
            run.check_inputs(inputs)
        except ConfigError:
            run.unlock()   # refused: the interrupted run stays resumable as it was
            raise
    done = run.stored_keys()
    todo = execution_order([t for t in tasks if t["key"] not in done])
    if done:
        log(f"resuming {run.target}: {len(tasks) - len(todo)} of {len(tasks)} runs already stored")
    if progress:
        progress(len(tasks) - len(todo), len(tasks))
    n_workers = engines.resolve_workers(engine, workers, len(todo))
    stop_after = int(os.environ.get(STOP_AFTER_ENV, "0") or 0)
    cpu = busy = 0.0
    restore = _terminate_as_interrupt()
    try:
        for i, result in enumerate(engines.execute(run_task, todo, engine=engine,
                                                   workers=n_workers, scheduler=scheduler), 1):
            run.write_part(result)
            cpu += result["meta"]["cpu_seconds"]
            busy += result["meta"]["seconds"]
            if progress:
                progress(len(tasks) - len(todo) + i, len(tasks))
            if stop_after and i >= stop_after:
                os._exit(75)
    except ConfigError as exc:  # model rejected a sweep point: nothing worth resuming
        run.discard()
        raise exc.with_file(file) from None
    except BaseException as exc:
        run.unlock()
        stored = len(run.stored_keys())
        if stored == 0:  # nothing to resume (e.g. no scheduler): leave no directory behind
            run.discard()
        elif isinstance(exc, KeyboardInterrupt):
            log(f"interrupted with {stored} of {len(tasks)} runs stored; "
                f"continue with: abm run --resume {run.target}")
        else:
            log(f"{stored} of {len(tasks)} runs stored; after fixing the cause, continue with: "
                f"abm run --resume {run.target}")
        raise
    finally:
        restore()
    metas = [run.read_meta(t["key"]) for t in base_tasks]
    risk_metas = [run.read_meta(t["key"]) for t in tasks[len(base_tasks):]]
    run.combine([t["key"] for t in base_tasks])
    summary.write_all(run.partial, exp, points, metas, baseline=baseline_of(exp),
                      risk_metas=risk_metas)
    if exp.uncertainties is not None and exp.uncertainties.defaults:
        from abm import robustness  # robustness.csv: how far each conclusion survives the sweep
        robustness.write(run.partial, exp, points, metas, baseline=baseline_of(exp))
    store.write_networks(run.partial / "networks", graphs)
    finished = datetime.now(timezone.utc)
    manifest = {
        "experiment": exp.name, "config": exp.model_dump(mode="json"), "config_sha256": fp,
        "source": run.info["source"], "source_sha256": run.info.get("source_sha256"),
        "versions": _versions(engine),
        "engine": engine, "workers": n_workers, "scheduler": scheduler,
        "seeds": [{"point": p, "replicate": r, "seed": replicate_seed(exp.seed, p, r)}
                  for p in range(len(points)) for r in range(exp.replications)],
        "points": len(points), "tasks": len(tasks), "resumed_tasks": len(tasks) - len(todo),
        "base_tasks": len(base_tasks), "risk_tasks": len(tasks) - len(base_tasks),
        "risk_sources": [{k: v for k, v in s.items() if k not in ("label",)}
                         for s in risk_specs(exp)],
        "risk_replications": risk_replications(exp) if exp.risk_sources else 0,
        "started": run.started or started.isoformat(), "finished": finished.isoformat(),
        "wall_seconds": round(time.perf_counter() - t0, 3), "task_cpu_seconds": round(cpu, 3),
        "task_wall_seconds": round(busy, 3),
        "final_year": f"mean of the last {FINAL_YEAR_STEPS} monthly steps; last step for "
                      + ", ".join(sorted(CUMULATIVE_METRICS)),
        **arrangements,
        **economy_manifest(exp),
    }
    return run.finalize(manifest)


def input_files(exp: Experiment) -> dict[str, str | None]:
    """sha256 of every file the runs read besides the experiment: user-written economy and
    arrangement files. A resumed run refuses to continue when one has changed."""
    files = [f for _, f in economy_list(exp) if f] + [e.path for e in arrangement_entries(exp)
                                                       if not e.shipped and e.path]
    return {str(f): _file_sha(f) for f in files}


def economy_manifest(exp: Experiment) -> dict:
    """For a study across economies, `economies`: each economy's name, file (None = the default
    economy), sha256 and registered people; nothing for a single-economy experiment."""
    if exp.economies is None:
        return {}
    out = []
    for name, f in economy_list(exp):
        eco = params.load_economy(f)
        out.append({"name": name, "file": f, "sha256": _file_sha(eco["_path"]),
                    "label": eco.get("name"),
                    "population": eco["population"]["total"]["value"],
                    "practices": len(eco["practices"]["list"])})
    return {"economies": out}


def _terminate_as_interrupt() -> Callable[[], None]:
    """While tasks run, SIGTERM (a scheduler's or `kill`'s stop) is handled as Ctrl-C: stored
    runs stay resumable, the lock is released and the resume command is logged, instead of the
    process dying with its lock held. Returns the function that puts the old handler back."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, OSError):   # pragma: no cover - not the main interpreter
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, old)


def arrangement_manifest(exp: Experiment) -> dict:
    """What `abm report` needs to know about the compared arrangements without the files: the
    baseline, each arrangement's key, label and definition file (with its sha256), and the
    definitions of user-written files as they were when the run started."""
    entries = arrangement_entries(exp)
    definitions = {}
    for e in entries:
        if not e.shipped:
            data = read_yaml(e.path)
            data = data if isinstance(data, dict) else {}
            definitions[e.key] = json.loads(json.dumps(data, default=str))  # JSON-safe
    return {
        "baseline": baseline_of(exp),
        "arrangements": [{"key": e.key, "label": e.label, "file": e.path, "shipped": e.shipped,
                          "sha256": _file_sha(e.path) if e.path else None} for e in entries],
        "arrangement_definitions": definitions,
    }


def _file_sha(file: str) -> str | None:
    path = Path(file)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
