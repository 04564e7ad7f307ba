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
    for phase in ("Year start", "Demand", "Care", "Transitions", "Costs", "Payments", "Year end", "Metrics"):
        assert phase in text and phase in model.__doc__, phase


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
