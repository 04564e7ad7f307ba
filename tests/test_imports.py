"""Light imports and no import cycles: `import abm` and `import abm.params` load neither the model
nor Mesa nor numba; no two abm modules import each other (directly or round a loop); test helpers
live under tests/, not in the package."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "abm"
HEAVY = ("mesa", "numba", "abm.model", "solara", "plotly")


def _loaded_after(statement: str) -> set[str]:
    """Modules in sys.modules after running `statement` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


@pytest.mark.parametrize("statement", ["import abm", "import abm.params",
                                       "from abm import ARRANGEMENTS",
                                       "import abm.catalogue, abm.summary, abm.experiment"])
def test_light_imports_load_no_model_mesa_or_numba(statement):
    loaded = _loaded_after(statement)
    assert not [m for m in HEAVY if m in loaded], sorted(m for m in HEAVY if m in loaded)


def test_the_model_still_loads_on_demand():
    """abm.ContractingModel (PEP 562 lazy attribute) is the model class, imported when asked."""
    loaded = _loaded_after("import abm\nassert abm.ContractingModel.__module__ == 'abm.model'\n"
                           "from abm import ContractingModel, run_experiment")
    assert {"abm.model", "mesa"} <= loaded
    assert "ContractingModel" in dir(__import__("abm"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """abm modules that `path` imports anywhere (module level or inside functions), except
    under `if TYPE_CHECKING:` and except the root package (always initialised first)."""
    name = _module_name(path)
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                found.add(mod)
                found.update(f"{mod}.{a.name}" for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in known and m not in (name, "abm")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(p, set(files)) for name, p in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_cycle_detector_finds_a_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_summary_and_experiment_do_not_import_each_other():
    graph = _graph()
    assert "abm.summary" in graph["abm.experiment"]           # the runner writes the summary
    assert "abm.experiment" not in graph["abm.summary"]
    assert "abm.experiment" not in _loaded_after("import abm.summary")


def test_no_import_cycles_among_abm_modules():
    assert _cycles(_graph()) == []


def test_test_helpers_are_not_in_the_package():
    """The synthetic results writer is a test helper: it lives in tests/, nothing in abm/
    imports it."""
    assert not (PACKAGE / "report" / "_synthetic.py").exists()
    assert (ROOT / "tests" / "synthetic.py").is_file()
    for p in PACKAGE.rglob("*.py"):
        assert "synthetic" not in p.read_text(encoding="utf-8"), p
