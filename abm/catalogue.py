"""The arrangement catalogue: the six shipped definitions and any arrangement file a user writes.

Every arrangement is a YAML file (`configs/arrangements/<key>.yaml` for the shipped six) that
names itself with `key:` (the name used in every output) and `label:` (the name figures and
tables show). An experiment's `arrangements:` list takes shipped keys and paths to user-written
files alike; a file is validated exactly as the shipped ones are (`abm.params.load_arrangement`).

This module is light (pydantic and yaml only, through abm.params): the report and the summary
use it for labels without importing the model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from abm import params
from abm.errors import ConfigError, did_you_mean

#: Shipped arrangement keys, in their canonical order (the same tuple as abm.params.ARRANGEMENTS).
SHIPPED = params.ARRANGEMENTS
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
KEY_HELP = "letters, digits, '_', '-' or '.', starting with a letter or digit (it names output files)"
ENTRY_HELP = ("a shipped key (" + ", ".join(SHIPPED) + ") or a path to an arrangement YAML file")


@dataclass(frozen=True)
class Entry:
    """One arrangement of a run: its key and label, where its definition is, and whether it
    ships with the package."""
    key: str
    label: str
    path: str
    shipped: bool

    @property
    def source(self) -> str:
        """What the model is given as `arrangement`: the key if shipped, else the file's path."""
        return self.key if self.shipped else self.path


def is_path(entry: str) -> bool:
    """True when an `arrangements:` entry names a file rather than a shipped key."""
    return str(entry).endswith((".yaml", ".yml"))


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Entry]:
    out = {}
    for key in SHIPPED:
        path = params.arrangement_path(key)
        data = params.read_yaml(path)
        label = data.get("label") if isinstance(data, dict) else None
        out[key] = Entry(key, str(label or key), str(path), True)
    return out


def shipped() -> dict[str, Entry]:
    """The six shipped arrangements, key -> Entry, in canonical order."""
    return dict(_shipped())


def shipped_labels() -> dict[str, str]:
    """key -> label of the shipped arrangements, as their files give them."""
    return {k: e.label for k, e in _shipped().items()}


def label(key: str, labels: dict[str, str] | None = None) -> str:
    """Readable name of an arrangement: from `labels` (e.g. a run's manifest) when it has the
    key, else from the shipped file, else the key made readable."""
    if labels and key in labels:
        return str(labels[key])
    known = _shipped().get(str(key))
    if known is not None:
        return known.label
    return str(key).replace("_", " ").capitalize()


def labels(entries: Iterable[Entry | str] | None = None) -> dict[str, str]:
    """key -> label from the arrangement files: of the shipped six when `entries` is None,
    else of each given Entry, shipped key or path to a user-written file (validated)."""
    if entries is None:
        return shipped_labels()
    out = {}
    for e in entries:
        if not isinstance(e, Entry):
            e = load_file(e) if is_path(e) else _shipped().get(str(e)) or Entry(
                str(e), label(str(e)), "", True)
        out[e.key] = e.label
    return out


def load_file(path: str | Path, economy: dict | None = None) -> Entry:
    """Validate a user-written arrangement file (as the shipped ones are) and return its Entry.

    Errors name that file and the field: schema errors from abm.params, a `key:` that cannot
    name output files, or a `key:` that is one of the shipped arrangements' (it would be
    mistaken for it in every output).
    """
    p = Path(path).expanduser().resolve()
    for key, e in _shipped().items():
        if Path(e.path).resolve() == p:
            return e
    arr = params.load_arrangement(str(p), economy=economy, file=str(p))
    key = str(arr["key"])
    if not KEY_PATTERN.match(key):
        raise ConfigError("not a usable arrangement key", file=str(p), field="key", value=key,
                          allowed=KEY_HELP)
    if key in SHIPPED:
        raise ConfigError("key already names a shipped arrangement; give this file a key of its "
                          "own", file=str(p), field="key", value=key,
                          allowed="any key except " + ", ".join(SHIPPED))
    return Entry(key, str(arr["label"]), str(p), False)


def resolve(entries: list[str], *, base: Path | None = None, economy: dict | None = None,
            file: str = "<experiment>", field: str = "arrangements") -> list[Entry]:
    """The Entry of every item of an experiment's `arrangements:` list, in order.

    A shipped key stands for itself; anything else that looks like a path is found relative to
    `base` (the experiment file's folder) or the working directory and validated. Unknown keys,
    missing files and two entries with the same key are one-line ConfigErrors naming the
    experiment file and the entry.
    """
    base = Path.cwd() if base is None else Path(base)
    out: list[Entry] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(entries):
        where = f"{field}[{i}]"
        entry = str(raw)
        if entry in SHIPPED:
            e = _shipped()[entry]
        elif is_path(entry):  # a user-written file
            p = Path(entry).expanduser()
            found = next((c for c in ([p] if p.is_absolute() else [base / p, Path.cwd() / p])
                          if c.is_file()), None)
            if found is None:
                raise ConfigError("arrangement file not found", file=file, field=where,
                                  value=entry, allowed=ENTRY_HELP)
            e = load_file(found, economy=economy)
        else:
            hint = did_you_mean(entry, SHIPPED)
            raise ConfigError("unknown arrangement" + (f"; {hint}" if hint else ""), file=file,
                              field=where, value=entry, allowed=ENTRY_HELP)
        if e.key in seen:
            what = ("listed twice" if entry in SHIPPED and str(entries[seen[e.key]]) == entry
                    else f"has the same key as {field}[{seen[e.key]}]")
            raise ConfigError(f"arrangement {what}", file=file, field=where, value=e.key,
                              allowed="each key once (a file's key is its 'key:' field)")
        seen[e.key] = i
        out.append(e)
    return out


@lru_cache(maxsize=256)
def _key_of_file(path: str, mtime_ns: int) -> str:
    data = params.read_yaml(path)
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(key, str):
        raise ConfigError("required field missing", file=path, field="key", allowed=KEY_HELP)
    return key


def key_of(entry: str) -> str:
    """The output key of one `arrangements:` entry (a shipped key, or a file's `key:`)."""
    entry = str(entry)
    if not is_path(entry):
        return entry
    p = Path(entry)
    if not p.is_file():
        raise ConfigError("arrangement file not found", field="arrangements", value=entry,
                          allowed=ENTRY_HELP)
    for key, e in _shipped().items():
        if Path(e.path).resolve() == p.resolve():
            return key
    return _key_of_file(str(p), p.stat().st_mtime_ns)


__all__ = ["Entry", "SHIPPED", "is_path", "shipped", "shipped_labels", "label", "labels",
           "load_file", "resolve", "key_of"]
