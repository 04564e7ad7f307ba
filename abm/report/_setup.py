"""Where the report finds the economy and each arrangement's key terms, and how it flattens
them into rows (with their sources) for the Set-up section."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from abm.report._data import ReportData

SOURCE_KEYS = {"source", "sources", "reference", "references", "citation", "citations",
               "evidence", "ref", "refs"}
DESCRIPTION_KEYS = ("description", "summary", "label", "name")
MAX_ROWS = 40
LEAF_KEYS = SOURCE_KEYS | {"unit", "note", "description"}
KEEP_NONE = {"holder"}


def _as_mapping(obj: Any) -> dict[str, Any] | None:
    """A dict view of a config object (dict, pydantic model or dataclass), else None."""
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            out = dump()
            return out if isinstance(out, dict) else None
        except Exception:
            return None
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses
        return dataclasses.asdict(obj)
    return None


def _config_dirs() -> list[Path]:
    """configs/ folders to look in: the repository checkout and the installed package data."""
    import abm
    pkg = Path(abm.__file__).resolve().parent
    return [d for d in (pkg / "_data" / "configs", pkg.parent / "configs") if d.is_dir()]


def _load_yaml(path: Path) -> dict[str, Any] | None:
    try:
        import yaml
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:
        return None
    return data if isinstance(data, dict) else None


def arrangement_definition(data: ReportData, key: str) -> tuple[dict[str, Any] | None, str]:
    """(definition, where it came from) of one arrangement: the manifest's resolved config
    first (that is what the run used), then abm.params, then configs/arrangements/<key>.yaml.
    A user-written arrangement file's definition is in the manifest as the run read it."""
    recorded = data.manifest.get("arrangement_definitions")
    if isinstance(recorded, dict) and isinstance(recorded.get(key), dict):
        files = {str(a.get("key")): a.get("file") for a in data.manifest.get("arrangements") or []
                 if isinstance(a, dict)}
        name = Path(str(files.get(key) or f"{key}.yaml")).name
        return recorded[key], f"{name} (user-written; as recorded in the run manifest)"
    cfg = data.config
    for holder in (cfg.get("arrangement_definitions"), cfg.get("arrangement_terms"),
                   (cfg.get("definitions") or {}).get("arrangements")
                   if isinstance(cfg.get("definitions"), dict) else None,
                   cfg.get("arrangements") if isinstance(cfg.get("arrangements"), dict) else None,
                   (cfg.get("economy") or {}).get("arrangements")
                   if isinstance(cfg.get("economy"), dict) else None):
        if isinstance(holder, dict) and isinstance(holder.get(key), dict):
            return holder[key], "run manifest (resolved configuration)"
        if isinstance(holder, list):
            for item in holder:
                if isinstance(item, dict) and str(item.get("key", item.get("name"))) == key:
                    return item, "run manifest (resolved configuration)"
    # The definition file as written: it states the key terms (defaults it leaves out are
    # the same in every arrangement, and experiment overrides are listed separately).
    dirs = _config_dirs()
    try:
        from abm import params  # owned by the model core; optional here
        dirs = [Path(params.config_dir())] + dirs
    except Exception:
        params = None
    for d in dirs:
        for name in (f"{key}.yaml", f"{key}.yml"):
            p = d / "arrangements" / name
            if p.exists():
                m = _load_yaml(p)
                if m:
                    return m, f"configs/arrangements/{name}"
    if params is not None:
        try:
            m = _as_mapping(params.load_arrangement(key))
        except Exception:
            m = None
        if m:
            return m, "abm.params.load_arrangement"
    return None, ""


def economy_definition(data: ReportData) -> tuple[dict[str, Any] | None, str]:
    """(economy config, where it came from): the manifest, else abm.params.load_economy on the
    experiment's `economy` entry, else the YAML file it names."""
    eco = data.config.get("economy")
    if isinstance(eco, dict):
        return eco, "run manifest (resolved configuration)"
    ref = eco if isinstance(eco, str) and eco else "default"
    candidates: list[Path] = []
    if ref != "default":
        p = Path(ref)
        candidates += [p, data.results_dir / p] + [d.parent / p for d in _config_dirs()]
    try:
        from abm import params
        for c in (candidates or [None]):
            if c is not None and not c.is_file():
                continue
            try:
                m = _as_mapping(params.load_economy(c))
            except Exception:
                m = None
            if m:
                where = Path(m.get("_path", c or "default")).name
                return m, f"{where} (via abm.params.load_economy)"
    except ImportError:
        pass
    for d in _config_dirs():
        candidates += [d / "economies" / "default.yaml"]
    for p in candidates:
        if p.is_file():
            m = _load_yaml(p)
            if m:
                return m, str(p.name)
    return None, ""


def _fmt_scalar(v: Any, limit: int = 240) -> str:
    if isinstance(v, dict):
        out = "; ".join(f"{k}: {_fmt_scalar(x, limit)}" for k, x in v.items())
        return out if len(out) <= limit else out[:limit - 1] + "…"
    if isinstance(v, (list, tuple)):
        out = ", ".join(_fmt_scalar(x, limit) for x in v)
        return out if len(out) <= limit else out[:limit - 1] + "…"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _source_text(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (str, int, float)):
        return [str(v)]
    if isinstance(v, dict):
        parts = [str(v[k]) for k in ("title", "author", "year", "publisher", "note", "url",
                                     "section") if k in v]
        return ["; ".join(parts) if parts else ", ".join(f"{k}: {x}" for k, x in v.items())]
    if isinstance(v, (list, tuple)):
        out: list[str] = []
        for x in v:
            out += _source_text(x)
        return out
    return [str(v)]


def flatten_terms(cfg: dict[str, Any], skip: tuple[str, ...] = ()) -> tuple[
        str, list[tuple[str, str, list[str]]], list[str]]:
    """(description, rows of (term, value, sources), top-level sources) from a nested config.

    A row's sources are those recorded next to it: a `{value, unit, source}` leaf, or a
    `source` key in the block that holds it. The config's top-level sources are returned
    separately (they back the whole definition) rather than repeated on every row.
    """
    description = ""
    for k in DESCRIPTION_KEYS[:2]:
        if isinstance(cfg.get(k), str):
            description = " ".join(cfg[k].split())
            break
    rows: list[tuple[str, str, list[str]]] = []
    top_sources: list[str] = []
    for k, v in cfg.items():
        if str(k).lower() in SOURCE_KEYS:
            top_sources += _source_text(v)

    def walk(obj: dict[str, Any], prefix: str, inherited: list[str]) -> None:
        local: list[str] = []
        if prefix:
            for k, v in obj.items():
                if str(k).lower() in SOURCE_KEYS:
                    local += _source_text(v)
        srcs = local or inherited
        for k, v in obj.items():
            ks = str(k)
            if ks.lower() in SOURCE_KEYS or ks.startswith("_") or (
                    not prefix and (ks in DESCRIPTION_KEYS or ks in skip or ks == "key")):
                continue
            name = f"{prefix}{ks}"
            if isinstance(v, dict):
                if "value" in v and set(v) - {"value"} <= LEAF_KEYS:
                    s = _source_text(v.get("source") or v.get("sources") or v.get("reference"))
                    unit = f" ({v['unit']})" if v.get("unit") else ""
                    note = f" — {v['description']}" if v.get("description") else ""
                    rows.append((name, _fmt_scalar(v["value"]) + unit + note, s or srcs))
                elif v and all(not isinstance(x, (dict, list, tuple)) for x in v.values()) \
                        and len(v) > 3:
                    rows.append((name, _fmt_scalar(v), srcs))
                else:
                    walk(v, name + " › ", srcs)
            elif isinstance(v, (list, tuple)):
                if all(not isinstance(x, (dict, list, tuple)) for x in v):
                    rows.append((name, _fmt_scalar(v) or "—", srcs))
                else:
                    rows.append((name, f"{len(v)} entries", srcs))
            elif v is None and name not in KEEP_NONE:
                continue  # an unused optional block (e.g. `alliance: null`): nothing to say
            else:
                rows.append((name, _fmt_scalar(v), srcs))

    walk(cfg, "", [])
    if len(rows) > MAX_ROWS:
        rows = rows[:MAX_ROWS] + [("…", f"{len(rows) - MAX_ROWS} more terms in the config", [])]
    return description, rows, top_sources


def organisations_rows(eco: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(id, name, kind, NHS body, source) of each organisation listed in an economy."""
    out = []
    for o in eco.get("organisations") or []:
        if isinstance(o, dict):
            out.append((str(o.get("id", "")), str(o.get("name", o.get("label", ""))),
                        str(o.get("kind", "")), "yes" if o.get("nhs_body") else "no",
                        "; ".join(_source_text(o.get("source") or o.get("sources")))))
    return out


def practices_summary(eco: dict[str, Any]) -> tuple[str, list[str]] | None:
    """One sentence on an economy's GP practices (count, list sizes, contract types)."""
    pr = eco.get("practices")
    lst = pr.get("list") if isinstance(pr, dict) else pr if isinstance(pr, list) else None
    if not lst:
        return None
    sizes = [float(p.get("list_size")) for p in lst if isinstance(p, dict)
             and isinstance(p.get("list_size"), (int, float))]
    from collections import Counter
    contracts = Counter(str(p.get("contract", "")).upper() for p in lst if isinstance(p, dict)
                        and p.get("contract"))
    s = f"{len(lst)} GP practices"
    if sizes:
        s += (f" with list sizes from {min(sizes):,.0f} to {max(sizes):,.0f} "
              f"(total {sum(sizes):,.0f} registered patients)")
    if contracts:
        s += " on " + ", ".join(f"{c} {k}" for k, c in contracts.most_common()) + " contracts"
    srcs = _source_text(pr.get("source")) if isinstance(pr, dict) else []
    return s + ".", srcs
