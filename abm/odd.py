"""Keep docs/ODD.md true: its parameter tables are generated from configs/ and checked by a test.

    .venv/bin/python -m abm.odd          # rewrite the generated block in docs/ODD.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .params import default_parameters, flatten, load_arrangement, ARRANGEMENTS

BEGIN = "<!-- BEGIN GENERATED PARAMETERS (python -m abm.odd) -->"
END = "<!-- END GENERATED PARAMETERS -->"
PHASES_BEGIN = "<!-- BEGIN GENERATED PHASES (python -m abm.odd) -->"
PHASES_END = "<!-- END GENERATED PHASES -->"
ODD = Path(__file__).resolve().parent.parent / "docs" / "ODD.md"


def _fmt(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _range(leaf: dict) -> str:
    """The assumption register's plausible range, with its reason: `low-high (why)`; `×low-high`
    for a multiplier on every entry of a mapping; empty when the leaf has none."""
    if "range" in leaf:
        text = f"{_fmt(leaf['range'][0])} to {_fmt(leaf['range'][1])}"
    elif "range_scale" in leaf:
        text = f"×{_fmt(leaf['range_scale'][0])} to ×{_fmt(leaf['range_scale'][1])} on every entry"
    else:
        return ""
    why = str(leaf.get("range_why", "")).strip()
    return f"{text} ({why})" if why else text


def render() -> str:
    """Markdown tables of every parameter (value, unit, plausible range, source) and every arrangement's key terms."""
    lines = [BEGIN, "", "#### Parameters (`configs/parameters.yaml`)", ""]
    group = None
    for name, leaf in flatten(default_parameters()).items():
        g = name.split(".")[0]
        if g != group:
            group = g
            lines += ["", f"**{g}**", "", "| parameter | value | unit | plausible range | source | meaning |",
                      "|---|---|---|---|---|---|"]
        cells = [f"`{name}`", _fmt(leaf["value"]), str(leaf.get("unit", "")), _range(leaf),
                 str(leaf.get("source", "")),
                 str(leaf.get("description", ""))]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    lines += ["", "#### Arrangements (`configs/arrangements/*.yaml`)", "",
              "| key | holder | payment | scope | value factor | fee | years | pass-through | practices |",
              "|---|---|---|---|---|---|---|---|---|"]
    for key in ARRANGEMENTS:
        a = load_arrangement(key)
        h = a["holder"]
        holder = "none" if not h else (h["org"] or f"new {h['new']['kind']} ({'NHS' if h['new']['nhs_body'] else 'non-NHS'})")
        c = a["contract"] or {}
        pay = c.get("payment", "standard contracts" + (" + alliance pool" if a["alliance"] else ""))
        lines.append(f"| `{key}` | {holder} | {pay} | {', '.join(c.get('scope', [])) or '-'} | "
                     f"{c.get('value_factor', '-')} | {c.get('management_fee', '-')} | "
                     f"{c.get('contract_years', a['alliance']['contract_years'] if a['alliance'] else '1 (rolled)')} | "
                     f"{a['pass_through'] if a['holder'] else '-'} | {', '.join(a['practices']['allowed'])} |")
    lines += ["", END]
    return "\n".join(lines)


def render_phases() -> str:
    """The month as `ContractingModel.PHASES` runs it: name, when it runs and what it does (docstrings)."""
    from .model import ContractingModel
    lines = [PHASES_BEGIN, "", "| # | phase | runs | what it does |", "|---|---|---|---|"]
    for i, (name, fn) in enumerate(ContractingModel.PHASES, start=1):
        doc = " ".join((fn.__doc__ or "").split())
        when, _, what = doc.partition(": ")
        lines.append(f"| {i} | `{name}` | {when} | {what.replace('|', '/')} |")
    lines += ["", PHASES_END]
    return "\n".join(lines)


def _replace(text: str, begin: str, end_marker: str, block: str) -> str:
    start, end = text.index(begin), text.index(end_marker) + len(end_marker)
    return text[:start] + block + text[end:]


def update(path: Path = ODD) -> bool:
    """Rewrite the generated blocks; True when the file changed."""
    text = path.read_text()
    new = _replace(text, BEGIN, END, render())
    new = _replace(new, PHASES_BEGIN, PHASES_END, render_phases())
    if new != text:
        path.write_text(new)
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m abm.odd", description="Rewrite the generated blocks of the ODD.")
    ap.add_argument("path", nargs="?", type=Path, default=ODD, help="the ODD file (default: %(default)s)")
    path = ap.parse_args(argv).path
    print(f"{path} updated" if update(path) else f"{path} already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
