"""Sources the user can check: every `source` resolves to an entry of docs/references.md, and no
config, doc, report text or code string cites a file that is not in the repository."""
from pathlib import Path

import pytest
import yaml

from abm import references as refs
from abm.economy import build_economy

ROOT = Path(__file__).resolve().parent.parent
KNOWN = refs.keys()


# --------------------------------------------------------------------------- the rule itself
@pytest.mark.parametrize("text", [
    "Barker et al. BMJ 2017;356:j84 [ref: barker-bmj-2017]",
    "NAO 2018; Health Foundation [ref: nao-emergency-2018; hf-emergency-2018]",
    "assumption (range 0.3-0.5)",
    "model convention",
    "assumption; Kim (2009) JASSS 12/3/4 [ref: kim-jasss-2009]",
])
def test_rule_accepts(text):
    assert refs.problem(text, KNOWN) is None


@pytest.mark.parametrize("text, why", [
    ("Barker et al. BMJ 2017;356:j84", "cites no [ref: key]"),
    ("NHS Digital [ref: no-such-key]", "not in docs/references.md"),
    ("NHS Digital [ref: barker-bmj-2017; Bad Key]", "Bad Key"),
    ("assumption; Kim (2009) JASSS 12/3/4", "names evidence"),
    ("assumption, see https://example.org", "names evidence"),
    ("", "empty"),
    (None, "empty"),
])
def test_rule_refuses(text, why):
    assert why in (refs.problem(text, KNOWN) or "")


def test_entries_parse_and_keys_are_unique():
    keys = refs.entries()
    assert len(keys) > 50
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    for k in keys:
        assert refs.KEY_RE.match(k), k


def test_every_entry_has_a_year_and_a_link_or_publication_reference():
    text = refs.REFERENCES.read_text(encoding="utf-8")
    blocks = text.split("\n- `")[1:]
    assert len(blocks) == len(refs.entries())
    for block in blocks:
        key = block.split("`", 1)[0]
        body = " ".join(block.split("\n## ")[0].split())
        assert len(body) > 60, key                          # body or author, title and more
        assert (any(str(y) in body for y in range(1950, 2031))
                or any(w in body for w in ("Undated", "yearly", "monthly", "quarterly"))), key


# --------------------------------------------------------------------------- the repository's sources
def test_every_source_in_the_repository_resolves():
    problems = refs.check()
    assert not problems, "\n".join(problems)


def test_the_check_covers_every_kind_of_source():
    where = [s.where for s in refs.all_sources()]
    for part in ("configs/parameters.yaml", "configs/economies/dudley.yaml",
                 "configs/economies/black_country.yaml", "configs/arrangements/icp_full.yaml",
                 "abm/calibration.py: TARGETS", "abm/calibration.py: TRENDS", "abm/risk.py: SOURCES",
                 "abm/economy.py"):
        assert any(w.startswith(part) for w in where), part
    # a parameter's source, an organisation's, a place's and an arrangement's sources list
    assert any(w.endswith("demand.gp_contacts.source") for w in where)
    assert any("organisations[dgft].source" in w for w in where)
    assert any("places[dudley].source" in w for w in where)
    assert any(w.startswith("configs/arrangements/") and ": sources[" in w for w in where)
    keyed = sum(1 for s in refs.all_sources() if refs.cited(s.text))
    assert keyed >= 150, keyed


def test_a_bad_source_in_a_config_is_caught(tmp_path):
    """The check reads the files: a source without a key in a copied tree fails it."""
    for rel in ("configs/parameters.yaml", "docs/references.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((ROOT / rel).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "configs" / "economies").mkdir()
    (tmp_path / "configs" / "arrangements").mkdir()
    (tmp_path / "experiments").mkdir()
    assert not [p for p in refs.check(tmp_path) if p.startswith("configs/")]
    text = (tmp_path / "configs/parameters.yaml").read_text(encoding="utf-8")
    text = text.replace(" [ref: barker-bmj-2017]", "", 1)
    (tmp_path / "configs/parameters.yaml").write_text(text, encoding="utf-8")
    bad = [p for p in refs.check(tmp_path) if p.startswith("configs/")]
    assert len(bad) == 1 and "continuity.effect_per_0_2" in bad[0], bad


def test_an_economy_the_builder_writes_resolves(tmp_path):
    """What `abm economy build` writes for any input carries keys (its own texts, not the input's)."""
    data = ROOT / "configs" / "data" / "black_country"
    eco = build_economy(data / "gp-reg-pat-prac-all_black-country_2026-04.csv", sub_icb="D2P2L").economy
    out = tmp_path / "eco.yaml"
    out.write_text(yaml.safe_dump(eco, allow_unicode=True), encoding="utf-8")
    problems = [f"{s.where}: {w}" for s in refs.yaml_sources(out, tmp_path)
                if (w := refs.problem(s.text, KNOWN))]
    assert not problems, "\n".join(problems)


def test_no_unused_references():
    used = refs.used_keys()
    unused = sorted(KNOWN - set(used))
    assert not unused, f"entries of docs/references.md cited nowhere: {unused}"


def test_odd_tables_show_the_keys():
    """The generated parameter tables carry the sources as written, keys included."""
    text = (ROOT / "docs" / "ODD.md").read_text(encoding="utf-8")
    assert "[ref: barker-bmj-2017]" in text and "[ref: kim-jasss-2009]" in text


# --------------------------------------------------------------------------- files a text cites
def test_nothing_cites_a_file_outside_the_repository():
    missing = refs.missing_files()
    assert not missing, "\n".join(missing)


def test_the_file_check_finds_private_names_and_missing_paths(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "real.md").write_text("x")
    (tmp_path / "a.md").write_text(
        "see docs/real.md and real.md\n"
        "as in DOMAIN.md\n"
        "seed 002_d8147970d2a8f31f.txt\n"
        "copies in seeds/\n"
        "and docs/gone.md\n", encoding="utf-8")
    found = refs.missing_files(tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == ["DOMAIN.md", "002_d8147970d2a8f31f.txt", "seeds/",
                                                     "docs/gone.md"], found
