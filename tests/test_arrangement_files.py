"""Arrangements as a catalogue: a user-written arrangement file in an experiment's
`arrangements:` list runs under `abm run` (validated as the shipped ones, keyed in every output
by its `key:` and labelled by its `label:`), and the baseline of paired differences is declared
with `baseline:` and recorded so `abm report` on stored results uses it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from abm import catalogue
from abm.cli import main
from abm.experiment import load_experiment, run_experiment
from abm.params import ARRANGEMENTS, arrangement_path

FAKE = "experiment_fake_model:FakeModel"
LABEL = "Fragmented, block-paid acute"


def _variant(folder: Path, name: str = "block_acute.yaml", key: str = "frag_block",
             edit=None) -> Path:
    """fragmented.yaml with the acute trust paid by block instead of tariff, as a user file."""
    text = arrangement_path("fragmented").read_text()
    text = text.replace("key: fragmented", f"key: {key}").replace(
        "label: Fragmented", f"label: {LABEL}").replace("acute: tariff", "acute: block")
    if edit:
        text = edit(text)
    path = folder / name
    path.write_text(text)
    return path


def _experiment(folder: Path, arrangements: str, extra: str = "", months: int = 2) -> Path:
    path = folder / "exp.yaml"
    path.write_text(f"name: t\narrangements: {arrangements}\nreplications: 2\nseed: 3\n"
                    f"months: {months}\npopulation_scale: 0.02\n{extra}")
    return path


def test_labels_come_from_the_arrangement_files():
    """One catalogue: the shipped keys are abm.params.ARRANGEMENTS and each label is its file's."""
    import yaml
    from abm import style
    assert tuple(catalogue.shipped()) == ARRANGEMENTS == style.ARRANGEMENTS
    for key in ARRANGEMENTS:
        label = yaml.safe_load(arrangement_path(key).read_text())["label"]
        assert catalogue.label(key) == style.arrangement_label(key) == label
    assert catalogue.label("fragmented", {"fragmented": "Status quo"}) == "Status quo"
    assert catalogue.label("my_variant") == "My variant"
    assert catalogue.labels() == {k: catalogue.label(k) for k in ARRANGEMENTS}


def test_labels_of_a_run_include_user_files(tmp_path):
    path = _variant(tmp_path)
    assert catalogue.labels(["fragmented", str(path)]) == {"fragmented": "Fragmented",
                                                           "frag_block": LABEL}


def test_abm_run_with_a_user_written_arrangement_file(tmp_path, capsys):
    """The real model runs the file's terms; outputs use its key, the report its label."""
    _variant(tmp_path)
    exp = _experiment(tmp_path, "[fragmented, block_acute.yaml]")
    out = tmp_path / "o"
    assert main(["run", str(exp), "--out", str(out), "--quiet", "--workers", "1"]) == 0, \
        capsys.readouterr().err
    res = pd.read_parquet(out / "results.parquet")
    assert set(res["arrangement"]) == {"fragmented", "frag_block"}
    assert sorted(p.name for p in (out / "networks").iterdir()) == [
        "frag_block.graphml", "fragmented.graphml"]

    def acute_payments(key):
        g = nx.read_graphml(out / "networks" / f"{key}.graphml", force_multigraph=True)
        return {d["payment"] for u, v, d in g.edges(data=True)
                if g.nodes[v].get("kind") == "acute" and d.get("kind") == "standard"}
    assert acute_payments("fragmented") == {"tariff"}
    assert acute_payments("frag_block") == {"block"}          # the file's terms were used
    m = json.loads((out / "manifest.json").read_text())
    assert m["baseline"] == "fragmented"
    entry = next(a for a in m["arrangements"] if a["key"] == "frag_block")
    assert entry["label"] == LABEL and not entry["shipped"]
    assert Path(entry["file"]) == (tmp_path / "block_acute.yaml").resolve()
    assert m["arrangement_definitions"]["frag_block"]["standard_payment"]["acute"] == "block"
    s = pd.read_csv(out / "summary.csv").set_index(["arrangement", "metric"])
    assert math.isfinite(s.loc[("frag_block", "cost_per_capita"), "diff_mean"])
    assert math.isnan(s.loc[("fragmented", "cost_per_capita"), "diff_mean"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"Contract network: {LABEL}" in page
    assert "Paired differences from Fragmented (95% CI)" in page
    assert "user-written" in page                              # its terms in Set-up


def _fake_run(tmp_path: Path, config: dict) -> Path:
    return run_experiment(dict(config), out=tmp_path / "o", workers=1, model=FAKE)


BASE = {"name": "t", "arrangements": ["fragmented", "alliance", "icp_full"], "replications": 4,
        "seed": 11, "months": 13, "population_scale": 0.1}


def test_declared_baseline_is_used_and_recorded(tmp_path):
    """`baseline: alliance`: differences are from alliance in summary.csv; the manifest records
    it, and a rebuilt report (abm report) uses it without the experiment file."""
    out = _fake_run(tmp_path, {**BASE, "baseline": "alliance"})
    m = json.loads((out / "manifest.json").read_text())
    assert m["baseline"] == "alliance" and m["config"]["baseline"] == "alliance"
    s = pd.read_csv(out / "summary.csv").set_index(["arrangement", "metric"])
    coc = "continuity_of_care"
    assert math.isnan(s.loc[("alliance", coc), "diff_mean"])
    # the fake's continuity is 0.5 under fragmented and 0.6 otherwise
    assert s.loc[("fragmented", coc), "diff_mean"] == pytest.approx(-0.1)
    assert s.loc[("icp_full", coc), "diff_mean"] == pytest.approx(0.0)
    assert not (out / "report.html").exists()                   # the API writes no report
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Paired differences from Alliance (95% CI)" in page
    assert "Paired differences from Fragmented" not in page


def test_default_baseline_is_fragmented_and_absent_without_it(tmp_path):
    exp, _ = load_experiment({**BASE})
    assert exp.baseline == "fragmented"
    exp, _ = load_experiment({**BASE, "arrangements": ["alliance", "icp_full"]})
    assert exp.baseline is None
    out = _fake_run(tmp_path, {**BASE, "arrangements": ["alliance", "icp_full"]})
    assert json.loads((out / "manifest.json").read_text())["baseline"] is None
    s = pd.read_csv(out / "summary.csv")
    assert s["diff_mean"].isna().all()


def test_baseline_may_name_a_file_entry_by_key_or_as_written(tmp_path):
    _variant(tmp_path)
    for baseline in ("frag_block", "block_acute.yaml"):
        exp, _ = load_experiment(_experiment(tmp_path, "[fragmented, block_acute.yaml]",
                                             f"baseline: {baseline}\n"))
        assert exp.baseline == "frag_block"
        assert exp.arrangements == ["fragmented", str((tmp_path / "block_acute.yaml").resolve())]


def test_validate_accepts_an_experiment_with_a_file_entry(tmp_path, capsys):
    _variant(tmp_path)
    exp = _experiment(tmp_path, "[fragmented, block_acute.yaml]")
    assert main(["validate", str(exp), str(tmp_path / "block_acute.yaml")]) == 0
    out = capsys.readouterr().out
    assert "2 arrangements" in out and f"ok (arrangement 'frag_block', label '{LABEL}')" in out
    _variant(tmp_path, "clash.yaml", key="icp_full")
    assert main(["validate", str(tmp_path / "clash.yaml")]) == 2
    assert "shipped arrangement" in capsys.readouterr().err


def _bad_schema(text):
    return text.replace("community: block", "community: blok")


def _typo(text):
    return text.replace("prevention_holder:", "prevention_holdr:")


def _holder(text):
    return text.replace("holder: null", "holder: {org: nowhere}\ncontract: {kind: prime, "
                        "payment: capitation, scope: [community]}")


# id, files to write (name -> (key, edit)), arrangements, extra experiment text, fragments
BAD = [
    ("file not found", {}, "[fragmented, missing.yaml]", "",
     ["exp.yaml", "arrangements[1]", "'missing.yaml'", "arrangement file not found",
      "path to an arrangement YAML file"]),
    ("unknown shipped key", {}, "[fragmented, aliance]", "",
     ["arrangements[1]", "did you mean 'alliance'", "path to an arrangement YAML file"]),
    ("bad payment in file", {"v.yaml": ("v1", _bad_schema)}, "[fragmented, v.yaml]", "",
     ["v.yaml", "standard_payment.community", "'blok'", "tariff"]),
    ("unknown key in file", {"v.yaml": ("v1", _typo)}, "[fragmented, v.yaml]", "",
     ["v.yaml", "prevention_holdr", "did you mean 'prevention_holder'"]),
    ("unknown organisation in file", {"v.yaml": ("v1", _holder)}, "[fragmented, v.yaml]", "",
     ["v.yaml", "holder.org", "'nowhere'", "unknown organisation", "allowed:"]),
    ("file reuses a shipped key", {"v.yaml": ("alliance", None)}, "[fragmented, v.yaml]", "",
     ["v.yaml", "field 'key'", "'alliance'", "shipped arrangement"]),
    ("unusable key", {"v.yaml": ("my variant!", None)}, "[fragmented, v.yaml]", "",
     ["v.yaml", "field 'key'", "'my variant!'", "letters, digits"]),
    ("two files, one key", {"a.yaml": ("v1", None), "b.yaml": ("v1", None)},
     "[fragmented, a.yaml, b.yaml]", "",
     ["exp.yaml", "arrangements[2]", "'v1'", "same key as arrangements[1]", "each key once"]),
    ("key listed twice", {}, "[fragmented, alliance, fragmented]", "",
     ["arrangements[2]", "listed twice", "each key once"]),
    ("baseline not compared", {}, "[fragmented, alliance]", "baseline: icp_full\n",
     ["exp.yaml", "field 'baseline'", "'icp_full'", "allowed: fragmented, alliance"]),
    ("baseline typo", {"v.yaml": ("frag_block", None)}, "[fragmented, v.yaml]",
     "baseline: frag_blok\n",
     ["field 'baseline'", "did you mean 'frag_block'", "allowed: fragmented, frag_block"]),
]


@pytest.mark.parametrize("files,arrangements,extra,fragments", [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_bad_arrangement_entries_are_one_line_exit_2(tmp_path, capsys, files, arrangements,
                                                     extra, fragments):
    for name, (key, edit) in files.items():
        _variant(tmp_path, name, key, edit)
    exp = _experiment(tmp_path, arrangements, extra)
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in (["run", str(exp), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"],
                 ["validate", str(exp)]):
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2, (argv[0], err)
        assert "\n" not in err and "Traceback" not in err, err
        for fragment in fragments:
            assert fragment in err, (argv[0], fragment, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # no output left behind


def test_a_path_to_a_shipped_file_is_that_arrangement(tmp_path):
    exp, _ = load_experiment({**BASE, "arrangements": [str(arrangement_path("alliance")),
                                                       "fragmented"]})
    assert exp.arrangements == ["alliance", "fragmented"]
    with pytest.raises(Exception, match="listed twice|same key"):
        load_experiment({**BASE, "arrangements": [str(arrangement_path("alliance")), "alliance"]})
