"""docs/ODD.md stays true to the code: generated tables current, every metric and phase described."""
from pathlib import Path

from abm import model, odd
from abm.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parent.parent


def test_odd_parameter_tables_are_current():
    text = (ROOT / "docs" / "ODD.md").read_text()
    start, end = text.index(odd.BEGIN), text.index(odd.END) + len(odd.END)
    assert text[start:end] == odd.render(), "run: python -m abm.odd"


def test_odd_names_every_metric_and_parameter_group():
    text = (ROOT / "docs" / "ODD.md").read_text()
    for name in METRIC_NAMES:
        assert f"`{name}`" in text, name


def test_odd_phase_list_is_the_model_phase_list():
    """The process overview in the ODD is generated from ContractingModel.PHASES and must match it."""
    text = (ROOT / "docs" / "ODD.md").read_text()
    start, end = text.index(odd.PHASES_BEGIN), text.index(odd.PHASES_END) + len(odd.PHASES_END)
    assert text[start:end] == odd.render_phases(), "run: python -m abm.odd"
    listed = [line.split("`")[1] for line in text[start:end].splitlines() if line.startswith("| ") and "`" in line]
    assert listed == [name for name, _ in model.ContractingModel.PHASES]


def test_every_phase_says_when_it_runs():
    for name, fn in model.ContractingModel.PHASES:
        when = (fn.__doc__ or "").split(":")[0].strip()
        assert when.startswith(("Monthly", "Yearly", "Month 1 only")), (name, when)


def test_every_default_parameter_is_sourced():
    from abm.params import default_parameters, flatten
    for name, leaf in flatten(default_parameters()).items():
        assert leaf.get("source") and leaf.get("unit"), name


def test_every_economy_number_is_sourced():
    import yaml
    eco = yaml.safe_load((ROOT / "configs" / "economies" / "dudley.yaml").read_text())
    for key, block in eco["population"].items():
        assert block.get("source") and block.get("unit"), key
    for o in eco["organisations"]:
        assert o.get("source"), o["id"]
    assert eco["practices"]["source"] and eco["service_providers"]["source"]


def test_readme_shows_the_two_commands():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make run" in head and "make test" in head
