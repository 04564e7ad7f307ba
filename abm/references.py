"""Sources the user can check: `docs/references.md` and the keys that every `source` cites.

A source string either cites at least one entry of docs/references.md by key, `[ref: key]` or
`[ref: key1; key2]`, or it is a pure assumption or convention of the model and starts with
`assumption` or `model convention` (and then names no publication: no year, link or "et al.").

    python -m abm.references      # check every source of the repository; exit 1 on a problem

Light on purpose (standard library and yaml): the tests and the command read the repository's
files as text; nothing here runs the model.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = ROOT / "docs" / "references.md"

#: An entry of docs/references.md: a list item opening with its key in backticks.
ENTRY_RE = re.compile(r"^- `([a-z0-9][a-z0-9-]*)`:", re.M)
#: A citation: `[ref: key]` or `[ref: key1; key2]`.
CITE_RE = re.compile(r"\[ref:\s*([^\]]*)\]")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: Prefixes that mark a source as a pure assumption or convention of the model.
PURE_PREFIXES = ("assumption", "model convention")
#: What a pure assumption must not contain: it would then name evidence and need its key.
EVIDENCE_RE = re.compile(r"\b(19|20)\d\d\b|https?://|\bet al\b|\bwww\.", re.I)


def entries(path: Path = REFERENCES) -> list[str]:
    """Every key of docs/references.md, in file order (duplicates kept, for the check)."""
    return ENTRY_RE.findall(path.read_text(encoding="utf-8"))


def keys(path: Path = REFERENCES) -> set[str]:
    return set(entries(path))


def cited(text: str) -> list[str]:
    """The keys a text cites, in order (`[ref: a; b]` gives a, b)."""
    out: list[str] = []
    for group in CITE_RE.findall(text or ""):
        out += [k.strip() for k in re.split(r"[;,]", group) if k.strip()]
    return out


def problem(source: str | None, known: set[str]) -> str | None:
    """Why a source string breaks the rule, or None when it keeps it."""
    text = " ".join(str(source or "").split())
    if not text:
        return "empty source"
    refs = cited(text)
    bad = [k for k in refs if not KEY_RE.match(k) or k not in known]
    if bad:
        return f"cites key(s) not in docs/references.md: {', '.join(bad)}"
    if refs:
        return None
    if text.lower().startswith(PURE_PREFIXES):
        m = EVIDENCE_RE.search(CITE_RE.sub("", text))
        if m:
            return (f"an assumption that names evidence ({m.group(0)!r}) must carry that evidence's key "
                    "[ref: ...]")
        return None
    return "cites no [ref: key] and does not start with 'assumption' or 'model convention'"


# --------------------------------------------------------------------------- the repository's sources
@dataclass(frozen=True)
class Source:
    where: str      # file and field, for the message
    text: str


def _leaves(node, path: str):
    """(dotted path, source) of every `source` string in a YAML tree; `sources:` lists too."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if k == "risk_sources":       # names of risk sources (abm.risk), not citations
                continue
            if k == "source" and (isinstance(v, str) or v is None):
                yield p, v
            elif k == "sources" and isinstance(v, list):
                for i, s in enumerate(v):
                    yield f"{p}[{i}]", s
            else:
                yield from _leaves(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            label = v.get("id", i) if isinstance(v, dict) else i
            yield from _leaves(v, f"{path}[{label}]")


def config_files(root: Path = ROOT) -> list[Path]:
    """The shipped configs whose `source` fields must resolve: parameters, economies, arrangements,
    experiments."""
    return ([root / "configs" / "parameters.yaml"]
            + sorted((root / "configs" / "economies").glob("*.yaml"))
            + sorted((root / "configs" / "arrangements").glob("*.yaml"))
            + sorted((root / "experiments").glob("*.yaml")))


def yaml_sources(path: Path, root: Path = ROOT) -> list[Source]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rel = path.relative_to(root).as_posix()
    return [Source(f"{rel}: {p}", "" if s is None else str(s)) for p, s in _leaves(data, "")]


def code_sources() -> list[Source]:
    """Source strings held in code: calibration targets and trends, risk sources, and the
    constants `abm economy build` writes into every economy it builds."""
    from . import calibration, economy, risk
    out = [Source(f"abm/calibration.py: TARGETS {m}", s) for m, _, _, s in calibration.TARGETS]
    out += [Source(f"abm/calibration.py: TRENDS {m}", s) for m, _, _, s in calibration.TRENDS]
    out.append(Source("abm/calibration.py: SOURCE_LOS", calibration.SOURCE_LOS))
    out += [Source(f"abm/risk.py: SOURCES[{k}].basis", d["basis"]) for k, d in risk.SOURCES.items()]
    out += [Source(f"abm/risk.py: ALLOCATION_SOURCES[{k}]", s) for k, s in risk.ALLOCATION_SOURCES.items()]
    for name in ("NATIONAL_AGE_SOURCE", "LTC_SOURCE", "FUNDER_SOURCE", "SERVICE_PROVIDERS_SOURCE",
                 "COMMISSIONED_BY_SOURCE"):
        out.append(Source(f"abm/economy.py: {name}", getattr(economy, name)))
    out.append(Source("abm/economy.py: PUBLICATION", economy.PUBLICATION.format(month="April 2026", file="x.csv")))
    return out


def all_sources(root: Path = ROOT) -> list[Source]:
    out: list[Source] = []
    for path in config_files(root):
        out += yaml_sources(path, root)
    return out + code_sources()


def check(root: Path = ROOT) -> list[str]:
    """Every broken source, as 'where: why'."""
    known = keys(root / "docs" / "references.md")
    return [f"{s.where}: {why}" for s in all_sources(root) if (why := problem(s.text, known))]


# --------------------------------------------------------------------------- files a text cites
#: Names that exist only outside the repository (the project's private briefs and seed copies).
PRIVATE_RE = re.compile(r"\b(DOMAIN\.md|INTERFACE\.md|REFERENCES\.md)\b|\bseeds/|\b\d{3}_[0-9a-f]{16}(\.txt)?\b")
#: A path-like token ending in .md or .txt.
FILE_RE = re.compile(r"(?<![\w./-])((?:\.{1,2}/)?[\w./-]*[\w-]\.(?:md|txt))\b")
#: Text files worth scanning (the tests/ folder is left out: its own fixtures name such files).
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".html", ".cfg", ".txt", ".csv", ""}


def repo_files(root: Path = ROOT) -> list[Path]:
    """Tracked and untracked (not ignored) files of the repository."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.splitlines()
        return [root / p for p in out if (root / p).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts]


def missing_files(root: Path = ROOT) -> list[str]:
    """Every citation of a file the user cannot open: the private brief names, seed file names, and
    `.md`/`.txt` paths that are not in the repository. 'file:line: name'."""
    files = repo_files(root)
    rels = {p.relative_to(root).as_posix() for p in files}
    names = {p.name for p in files}
    out = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel.startswith("tests/") or path.suffix not in TEXT_SUFFIXES or path.stat().st_size > 5_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for m in PRIVATE_RE.finditer(line):
                out.append(f"{rel}:{n}: {m.group(0)}")
            for m in FILE_RE.finditer(line):
                name = m.group(1)
                here = (path.parent / name).resolve()
                ok = (name.lstrip("./") in rels or name in names or Path(name).name in names
                      or (here.is_relative_to(root) and here.relative_to(root).as_posix() in rels))
                if not ok and not PRIVATE_RE.search(name):
                    out.append(f"{rel}:{n}: {name}")
    return out


def used_keys(root: Path = ROOT) -> dict[str, list[str]]:
    """key -> files citing it (docs/references.md itself left out)."""
    use: dict[str, list[str]] = {}
    for path in repo_files(root):
        rel = path.relative_to(root).as_posix()
        if rel == "docs/references.md" or rel.startswith("tests/") or path.suffix not in TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for k in cited(text):
            use.setdefault(k, []).append(rel)
    return use


def main() -> int:
    problems = check()
    dup = sorted({k for k in entries() if entries().count(k) > 1})
    unused = sorted(keys() - set(used_keys()))
    problems += [f"docs/references.md: duplicate key {k}" for k in dup]
    problems += [f"docs/references.md: unused key {k}" for k in unused]
    problems += [f"{x}: not in the repository" for x in missing_files()]
    for p in problems:
        print(p)
    n = len(all_sources())
    print(f"{n} sources, {len(keys())} references: " + ("all resolve" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
