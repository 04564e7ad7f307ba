"""`abm economy build` (issue 16, items 1-2): economies from NHS Digital's practice registration files.

A synthetic national extract in the official format (many sub-ICBs, both header eras, the five-year
age file and the practice map) is written to a temporary folder; the shipped Black Country economy is
checked against the published rows it was built from.
"""
from __future__ import annotations

import collections
import csv
import random
import shlex
from pathlib import Path

import pytest
import yaml

from abm.cli import main
from abm.economy import build_economy, to_seven_bands
from abm.errors import ConfigError
from abm.params import config_dir, load_economy, resolve

ROOT = Path(__file__).resolve().parent.parent
BC = ROOT / "configs" / "data" / "black_country"
BC_ROWS = BC / "gp-reg-pat-prac-all_black-country_2026-04.csv"
BC_ECONOMY = ROOT / "configs" / "economies" / "black_country.yaml"

SUB_ICB_HEADER = ["PUBLICATION", "EXTRACT_DATE", "TYPE", "SUB_ICB_LOCATION_CODE", "ONS_SUB_ICB_LOCATION_CODE",
                  "CODE", "POSTCODE", "SEX", "AGE", "NUMBER_OF_PATIENTS"]
CCG_HEADER = ["PUBLICATION", "EXTRACT_DATE", "TYPE", "CCG_CODE", "ONS_CCG_CODE", "CODE", "POSTCODE", "SEX", "AGE",
              "NUMBER_OF_PATIENTS"]
QUIN_HEADER = ["PUBLICATION", "EXTRACT_DATE", "TYPE", "ORG_TYPE", "ORG_CODE", "ONS_CODE", "POSTCODE", "SEX",
               "AGE_GROUP_5", "NUMBER_OF_PATIENTS"]
MAP_HEADER = ["PRACTICE_CODE", "PRACTICE_NAME", "PRACTICE_POSTCODE", "PCN_CODE", "PCN_NAME",
              "ONS_SUB_ICB_LOCATION_CODE", "SUB_ICB_LOCATION_CODE", "SUB_ICB_LOCATION_NAME", "ONS_ICB_CODE",
              "ICB_CODE", "ICB_NAME", "ONS_COMM_REGION_CODE", "COMM_REGION_CODE", "COMM_REGION_NAME",
              "SUPPLIER_NAME"]
QUIN_BANDS = [f"{a}_{a + 4}" for a in range(0, 95, 5)] + ["95+"]

# 3 ICBs of 4 sub-ICBs, 5-9 practices each
ICBS = {f"Q{i}A": [f"{i}{c}X" for c in "ABCD"] for i in range(1, 4)}


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


class National:
    """A synthetic national extract: all-ages file (either era), age file and map, in a folder."""

    def __init__(self, folder: Path, era: str = "sub-ICB", seed: int = 7):
        rnd = random.Random(seed)
        self.folder = folder
        self.practices: dict[str, dict] = {}
        n = 0
        for icb, subs in ICBS.items():
            for sub in subs:
                for _ in range(rnd.randint(5, 9)):
                    n += 1
                    code = f"{'ABCDEFGH'[n % 8]}{80000 + n}"
                    ages = {b: rnd.randint(0, 400) for b in QUIN_BANDS}
                    ages["15_19"] = 500                       # a known 15-19 count for the split
                    male = {b: x // 2 for b, x in ages.items()}
                    self.practices[code] = {"sub": sub, "icb": icb, "ages": ages, "male": male,
                                            "list": sum(ages.values()), "postcode": f"ZZ{n % 9} 1AA"}
        self.era = era
        date = "2026-04-01" if era == "sub-ICB" else "01JAN2021"
        header = SUB_ICB_HEADER if era == "sub-ICB" else CCG_HEADER
        self.all_rows = [["GP_PRAC_PAT_LIST", date, "GP", p["sub"], f"E38{i:06d}", code, p["postcode"], "ALL", "ALL",
                          p["list"]] for i, (code, p) in enumerate(self.practices.items())]
        self.header = header
        self.all = _write(folder / "gp-reg-pat-prac-all.csv", header, self.all_rows)
        quin = []
        for code, p in self.practices.items():
            for b in QUIN_BANDS:
                quin.append(["GP_PRAC_PAT_LIST", "2026-04-01", "GP", "GP", code, "", p["postcode"], "MALE", b, p["male"][b]])
                quin.append(["GP_PRAC_PAT_LIST", "2026-04-01", "GP", "GP", code, "", p["postcode"], "FEMALE", b,
                             p["ages"][b] - p["male"][b]])
        for icb in ICBS:           # higher-level rows of the same file must be ignored
            for b in QUIN_BANDS:
                quin.append(["GP_PRAC_PAT_LIST", "2026-04-01", "GP", "ICB", icb, "", "", "MALE", b, 99999])
        self.ages = _write(folder / "gp-reg-pat-prac-quin-age.csv", QUIN_HEADER, quin)
        self.map = _write(folder / "gp-reg-pat-prac-map.csv", MAP_HEADER, [
            [code, f"PRACTICE {code}", p["postcode"], f"U{code}", f"PCN {p['sub']}", "E38", p["sub"],
             f"NHS SUB-ICB {p['sub']}", "E54", p["icb"], f"NHS ICB {p['icb']}", "E40", "Y60", "MIDLANDS", "EMIS"]
            for code, p in self.practices.items()])

    def of(self, *, sub=None, icb=None) -> dict[str, dict]:
        return {c: p for c, p in self.practices.items() if p["sub"] == sub or p["icb"] == icb}

    def rewrite(self, name: str, header: list[str], rows: list[list]) -> Path:
        return _write(self.folder / name, header, rows)


@pytest.fixture
def national(tmp_path):
    return National(tmp_path)


def _build(capsys, *args) -> tuple[int, str, str]:
    code = main(["economy", "build", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------- selection
@pytest.mark.parametrize("era", ["sub-ICB", "CCG"])
def test_select_by_sub_icb_gives_its_practices_and_people_exactly(tmp_path, capsys, era):
    nat = National(tmp_path, era=era)
    want = nat.of(sub="2BX")
    out = tmp_path / "eco.yaml"
    code, stdout, err = _build(capsys, nat.all, "--sub-icb", "2BX", "--out", out)
    assert code == 0, err
    eco = load_economy(out)
    ids = [p["id"] for p in eco["practices"]["list"]]
    assert ids == sorted(want) and len(ids) == len(want)
    assert eco["population"]["total"]["value"] == sum(p["list"] for p in want.values())
    assert {p["id"]: p["list_size"] for p in eco["practices"]["list"]} == {c: p["list"] for c, p in want.items()}
    assert f"{len(want)} practices" in stdout
    src = eco["practices"]["source"]
    assert ("CCG-era" if era == "CCG" else "sub-ICB-era") in src and "gms (unknown)" in src
    assert ("2021-01-01" if era == "CCG" else "2026-04-01") in src
    # no age file: the national profile, said so
    assert "national profile" in eco["population"]["age_share"]["source"]
    assert all(p.get("age_share") is None for p in eco["practices"]["list"])


def test_select_several_sub_icbs_by_list_and_by_repeating(national, tmp_path, capsys):
    want = {**national.of(sub="1AX"), **national.of(sub="3DX")}
    for args in (["--sub-icb", "1AX,3DX"], ["--sub-icb", "1AX", "--sub-icb", "3dx"]):
        out = tmp_path / "eco.yaml"
        assert _build(capsys, national.all, *args, "--out", out)[0] == 0
        eco = load_economy(out)
        assert sorted(p["id"] for p in eco["practices"]["list"]) == sorted(want)


def test_select_by_icb_with_the_map(national, tmp_path, capsys):
    want = national.of(icb="Q2A")
    out = tmp_path / "eco.yaml"
    code, _, err = _build(capsys, national.all, "--icb", "Q2A", "--map", national.map, "--out", out)
    assert code == 0, err
    eco = load_economy(out)
    assert len(eco["practices"]["list"]) == len(want) == sum(len(national.of(sub=s)) for s in ICBS["Q2A"])
    assert eco["population"]["total"]["value"] == sum(p["list"] for p in want.values())
    assert {p["name"] for p in eco["practices"]["list"]} == {f"PRACTICE {c}" for c in want}   # names from the map
    assert eco["name"] == "NHS ICB Q2A"


def test_a_practice_with_no_patients_is_left_out_and_said_so(national, tmp_path, capsys):
    rows = [list(r) for r in national.all_rows]
    first = next(r for r in rows if r[3] == "1AX")
    first[-1] = 0
    path = national.rewrite("zero.csv", national.header, rows)
    out = tmp_path / "eco.yaml"
    assert _build(capsys, path, "--sub-icb", "1AX", "--out", out)[0] == 0
    eco = load_economy(out)
    assert first[5] not in [p["id"] for p in eco["practices"]["list"]]
    assert len(eco["practices"]["list"]) == len(national.of(sub="1AX")) - 1
    assert f"left out ({first[5]})" in eco["practices"]["source"]


# --------------------------------------------------------------------------- ages
def test_five_year_bands_aggregate_into_the_seven_with_15_19_split():
    seven = to_seven_bands({(15, 20): 5.0, (0, 5): 7.0, (95, 100): 3.0, (45, 50): 1.0})
    assert seven == pytest.approx([7.0, 3.0, 2.0, 1.0, 0.0, 0.0, 3.0])


def test_age_file_gives_each_practice_its_own_age_share(national, tmp_path, capsys):
    out = tmp_path / "eco.yaml"
    code, _, err = _build(capsys, national.all, "--sub-icb", "3CX", "--ages", national.ages, "--out", out)
    assert code == 0, err
    eco = load_economy(out)
    by_code = {p["id"]: p for p in eco["practices"]["list"]}
    total = [0.0] * 7
    for c, p in national.of(sub="3CX").items():
        a = p["ages"]
        expect = [a["0_4"],
                  a["5_9"] + a["10_14"] + 0.6 * a["15_19"],
                  0.4 * a["15_19"] + sum(a[b] for b in ("20_24", "25_29", "30_34", "35_39", "40_44")),
                  sum(a[b] for b in ("45_49", "50_54", "55_59", "60_64")),
                  a["65_69"] + a["70_74"], a["75_79"] + a["80_84"],
                  a["85_89"] + a["90_94"] + a["95+"]]
        assert sum(expect) == pytest.approx(p["list"])
        assert by_code[c]["age_share"] == pytest.approx([x / p["list"] for x in expect], abs=1e-6)
        assert sum(by_code[c]["age_share"]) == pytest.approx(1.0, abs=1e-9)
        total = [t + x for t, x in zip(total, expect)]
    assert eco["population"]["age_share"]["value"] == pytest.approx([t / sum(total) for t in total], abs=1e-4)
    src = eco["population"]["age_share"]["source"]
    assert "15_19 split 3/5 to 5-17" in src and "national profile" not in src


# --------------------------------------------------------------------------- places
def _places(national, tmp_path, sub="1BX"):
    codes = sorted(national.of(sub=sub))
    half = len(codes) // 2
    table = _write(tmp_path / "places.csv", ["practice_code", "place"],
                   [[c, "north" if i < half else "south"] for i, c in enumerate(codes)])
    info = _write(tmp_path / "place_info.csv", ["place", "name", "council", "acute", "mental_health"],
                  [["north", "North Town", "North Town Council", "North Hospitals NHS Trust", "Shire MH NHS FT"],
                   ["south", "South Town", "South Town Council", "South Hospitals NHS Trust", "Shire MH NHS FT"]])
    return codes, half, table, info


def test_places_table_splits_into_places_each_with_council_and_commissioner(national, tmp_path, capsys):
    codes, half, table, info = _places(national, tmp_path)
    out = tmp_path / "eco.yaml"
    code, _, err = _build(capsys, national.all, "--sub-icb", "1BX", "--places", table, "--place-info", info,
                          "--out", out)
    assert code == 0, err
    eco = load_economy(out)
    kind = {o["id"]: o["kind"] for o in eco["organisations"]}
    name = {o["id"]: o["name"] for o in eco["organisations"]}
    assert [p["id"] for p in eco["places"]] == ["north", "south"]
    for pl in eco["places"]:
        assert kind[pl["commissioner"]] == "commissioner" and kind[pl["local_authority"]] == "local_authority"
        assert pl["aliases"]["dchs"] in kind and pl["aliases"]["ccg"] == pl["commissioner"]
    assert len({pl["commissioner"] for pl in eco["places"]}) == 2
    assert name[eco["places"][0]["local_authority"]] == "North Town Council"
    place = {p["id"]: p["place"] for p in eco["practices"]["list"]}
    assert [place[c] for c in codes] == ["north"] * half + ["south"] * (len(codes) - half)
    assert set(eco["commissioned_by"]["value"].values()) == {"commissioner", "local_authority"}
    # one mental health trust named by both places; acute shares follow the places' populations
    assert [o["name"] for o in eco["organisations"] if o["kind"] == "mental_health"] == ["Shire MH NHS FT"]
    lists = {p["id"]: p["list_size"] for p in eco["practices"]["list"]}
    north = sum(lists[c] for c in codes[:half]) / sum(lists.values())
    em = eco["service_providers"]["value"]["emergency"]
    assert em == pytest.approx({"north_acute": north, "south_acute": 1 - north}, abs=1e-6)
    for s, shares in eco["service_providers"]["value"].items():
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9), s


def test_one_place_of_a_table_builds_an_economy_the_model_runs(national, tmp_path, capsys):
    from abm import ContractingModel

    codes, half, table, info = _places(national, tmp_path)
    out = tmp_path / "north.yaml"
    code, _, err = _build(capsys, national.all, "--sub-icb", "1BX", "--places", table, "--place-info", info,
                          "--only-place", "north", "--out", out)
    assert code == 0, err
    eco = load_economy(out)
    assert sorted(p["id"] for p in eco["practices"]["list"]) == codes[:half]
    for arrangement in ("alliance", "icp_full", "prime_provider"):      # arrangement ids via aliases
        resolve(arrangement, str(out))
    m = ContractingModel(economy=str(out), population_scale=0.05, rng=3)
    for _ in range(12):
        m.step()
    assert m.month == 12 and m.org_by_id["acute"].name == "North Hospitals NHS Trust"
    assert m.holder.org_id == "community"


def test_aliases_must_name_organisations(tmp_path):
    data = yaml.safe_load(BC_ECONOMY.read_text())
    data["aliases"] = {"dgft": "no_such_trust"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="aliases.dgft: unknown organisation 'no_such_trust'"):
        load_economy(path)


# --------------------------------------------------------------------------- bad input
def _bad_cases(nat: National, tmp: Path):
    rows = [list(r) for r in nat.all_rows]
    ok = ["--sub-icb", "1AX"]

    def changed(i, col, value, name):
        rs = [list(r) for r in rows]
        rs[i][nat.header.index(col)] = value
        return nat.rewrite(name, nat.header, rs)

    first = next(i for i, r in enumerate(rows) if r[3] == "1AX")
    dup = nat.rewrite("dup.csv", nat.header, rows + [rows[first]])
    no_count = nat.rewrite("nocount.csv", nat.header[:-1], [r[:-1] for r in rows])
    no_sub = nat.rewrite("nosub.csv", ["X" if h == "SUB_ICB_LOCATION_CODE" else h for h in nat.header], rows)
    places = _write(tmp / "places_bad.csv", ["practice_code", "place"], [["Z99999", "north"]])
    some = sorted(nat.of(sub="1AX"))
    partial = _write(tmp / "places_partial.csv", ["practice_code", "place"], [[some[0], "north"]])
    ages = [list(r) for r in csv.reader(nat.ages.open())]
    ages[1][QUIN_HEADER.index("AGE_GROUP_5")] = "15-ish"
    bad_band = nat.rewrite("badband.csv", ages[0], ages[1:])
    return [
        ("wrong header", [nat.ages, *ok], "gp-reg-pat-prac-quin-age.csv", "CODE"),
        ("missing column", [no_count, *ok], "nocount.csv", "NUMBER_OF_PATIENTS"),
        ("missing sub-ICB column", [no_sub, *ok], "nosub.csv", "SUB_ICB_LOCATION_CODE"),
        ("unknown code", [nat.all, "--sub-icb", "9ZX"], "gp-reg-pat-prac-all.csv", "SUB_ICB_LOCATION_CODE"),
        ("unknown ICB", [nat.all, "--icb", "Q9Z", "--map", nat.map], "gp-reg-pat-prac-map.csv", "ICB_CODE"),
        ("negative count", [changed(first, "NUMBER_OF_PATIENTS", "-5", "neg.csv"), *ok], "neg.csv",
         "NUMBER_OF_PATIENTS"),
        ("fractional count", [changed(first, "NUMBER_OF_PATIENTS", "12.5", "frac.csv"), *ok], "frac.csv",
         "NUMBER_OF_PATIENTS"),
        ("text count", [changed(first, "NUMBER_OF_PATIENTS", "many", "text.csv"), *ok], "text.csv",
         "NUMBER_OF_PATIENTS"),
        ("bad date", [changed(first, "EXTRACT_DATE", "April 2026", "date.csv"), *ok], "date.csv", "EXTRACT_DATE"),
        ("two extracts", [changed(first, "EXTRACT_DATE", "2026-03-01", "dates.csv"), *ok], "dates.csv",
         "EXTRACT_DATE"),
        ("not all ages", [changed(first, "AGE", "5", "age.csv"), *ok], "age.csv", "AGE"),
        ("duplicate practice", [dup, *ok], "dup.csv", "CODE"),
        ("unknown practice in places", [nat.all, *ok, "--places", places], "places_bad.csv", "practice_code"),
        ("practice without place", [nat.all, *ok, "--places", partial], "places_partial.csv", "practice_code"),
        ("unknown age band", [nat.all, *ok, "--ages", bad_band], "badband.csv", "AGE_GROUP_5"),
        ("--icb without map", [nat.all, "--icb", "Q1A"], None, "--icb"),
        ("missing file", [tmp / "nope.csv", *ok], "nope.csv", None),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(national, tmp_path, capsys):
    out = tmp_path / "out" / "eco.yaml"
    out.parent.mkdir()
    out.write_text("previous\n")                  # a failed build leaves an existing file alone
    cases = _bad_cases(national, tmp_path)
    assert len(cases) >= 15
    for label, args, file, fld in cases:
        code, stdout, err = _build(capsys, *args, "--out", out)
        assert code == 2, (label, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, (label, err)
        if file:
            assert file in lines[0], (label, lines[0])
        if fld:
            assert f"'{fld}'" in lines[0], (label, lines[0])
        assert out.read_text() == "previous\n" and sorted(p.name for p in out.parent.iterdir()) == ["eco.yaml"], label


def test_usage_errors_exit_2(national, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["economy", "build", str(national.all), "--sub-icb", "1AX"])           # no --out
    assert exc.value.code == 2 and "--out" in capsys.readouterr().err
    out = tmp_path / "x.yaml"
    assert main(["economy", "build", str(national.all), "--out", str(out)]) == 2    # no selection
    err = capsys.readouterr().err
    assert "--sub-icb" in err and err.count("\n") == 1 and not out.exists()


# --------------------------------------------------------------------------- the shipped Black Country
def _bc_rows():
    return [r for r in csv.DictReader(BC_ROWS.open()) if r["SUB_ICB_LOCATION_CODE"] == "D2P2L"]


def test_black_country_economy_has_every_d2p2l_practice_and_person():
    eco = load_economy(BC_ECONOMY)
    rows = _bc_rows()
    assert len(rows) == 169 and sum(int(r["NUMBER_OF_PATIENTS"]) for r in rows) == 1_337_739
    assert len(eco["practices"]["list"]) == 169
    assert eco["population"]["total"]["value"] == 1_337_739
    assert {p["id"]: p["list_size"] for p in eco["practices"]["list"]} == \
        {r["CODE"]: int(r["NUMBER_OF_PATIENTS"]) for r in rows}
    assert not {"M88020", "M91642"} & {p["id"] for p in eco["practices"]["list"]}   # the 15E border practices


def test_black_country_has_four_places_each_with_council_and_commissioner():
    eco = load_economy(BC_ECONOMY)
    orgs = {o["id"]: o for o in eco["organisations"]}
    assert [p["name"] for p in eco["places"]] == ["Dudley", "Sandwell", "Walsall", "Wolverhampton"]
    councils = {orgs[p["local_authority"]]["name"] for p in eco["places"]}
    assert councils == {"Dudley Metropolitan Borough Council", "Sandwell Metropolitan Borough Council",
                        "Walsall Council", "City of Wolverhampton Council"}
    for p in eco["places"]:
        assert orgs[p["commissioner"]]["kind"] == "commissioner"
        assert orgs[p["local_authority"]]["kind"] == "local_authority"
        assert "£" in p["source"]                      # its indicative NHS and council money
    assert len({p["commissioner"] for p in eco["places"]}) == 4
    acute = {o["name"] for o in eco["organisations"] if o["kind"] == "acute"}
    assert acute == {"The Dudley Group NHS Foundation Trust", "Sandwell and West Birmingham Hospitals NHS Trust",
                     "Walsall Healthcare NHS Trust", "The Royal Wolverhampton NHS Trust"}
    assert [o["name"] for o in eco["organisations"] if o["kind"] == "mental_health"] == \
        ["Black Country Healthcare NHS Foundation Trust"]
    for o in eco["organisations"]:
        assert o["source"], o["id"]
    for key, leaf in eco["population"].items():
        assert leaf["source"] and leaf["unit"], key
    for text in yaml.safe_dump(yaml.safe_load(BC_ECONOMY.read_text())).split("source"):
        assert "DOMAIN.md" not in text and "INTERFACE.md" not in text and "seeds/" not in text


def test_black_country_places_follow_the_derivation_rule():
    """configs/data/black_country/README.md: practice-code prefix, else postcode sector, else district."""
    rows = _bc_rows()
    prefix = {"M87": "dudley", "M88": "sandwell", "M91": "walsall", "M92": "wolverhampton"}
    sector, district = collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
    for r in rows:
        if r["CODE"][:3] in prefix:
            sector[r["POSTCODE"][:-2]][prefix[r["CODE"][:3]]] += 1
            district[r["POSTCODE"].split()[0]][prefix[r["CODE"][:3]]] += 1
    derived = {}
    for r in rows:
        p = prefix.get(r["CODE"][:3])
        derived[r["CODE"]] = p or (sector.get(r["POSTCODE"][:-2]) or district[r["POSTCODE"].split()[0]]).most_common(1)[0][0]
    shipped = {r["practice_code"]: r["place"] for r in csv.DictReader((BC / "places.csv").open())}
    assert shipped == derived
    dudley = [r for r in rows if shipped[r["CODE"]] == "dudley"]
    assert len(dudley) == 43 and sum(int(r["NUMBER_OF_PATIENTS"]) for r in dudley) == 353_359   # the README's figure


def test_black_country_yaml_is_what_its_header_command_writes(tmp_path, monkeypatch, capsys):
    text = BC_ECONOMY.read_text()
    command = next(line for line in text.splitlines() if line.startswith("# Command: "))
    argv = shlex.split(command.removeprefix("# Command: "))
    assert argv[:3] == ["abm", "economy", "build"]
    i = argv.index("--out")
    argv[i + 1] = str(tmp_path / "again.yaml")
    monkeypatch.chdir(ROOT)
    assert main(argv[1:]) == 0, capsys.readouterr().err
    again = (tmp_path / "again.yaml").read_text()
    drop = lambda t: [line for line in t.splitlines() if not line.startswith("# Command: ")]
    assert drop(again) == drop(text)


def test_black_country_validates_and_ships_as_package_data(capsys):
    assert main(["validate", str(BC_ECONOMY)]) == 0
    assert "NHS Black Country" in capsys.readouterr().out
    data = config_dir() / "data" / "black_country"
    assert (data / BC_ROWS.name).is_file() and (data / "places.csv").is_file() and (data / "README.md").is_file()
    assert (config_dir() / "economies" / "dudley.yaml").is_file()


def test_default_economy_is_unchanged():
    eco = load_economy(None)
    assert eco["name"] == "Dudley (default)" and len(eco["practices"]["list"]) == 45
    assert "aliases" not in yaml.safe_load((ROOT / "configs" / "economies" / "dudley.yaml").read_text())


def test_build_economy_returns_plain_data_without_writing(national):
    res = build_economy(national.all, sub_icb="2AX")
    assert res.economy["population"]["total"]["value"] == sum(p["list"] for p in national.of(sub="2AX").values())
    assert res.header.startswith("# Built by `abm economy build`")


def test_practices_flag_as_in_the_interface(tmp_path, capsys):
    """`abm economy build --practices FILE ...` (the interface's form) works like the positional file."""
    from abm import cli
    from abm.params import config_dir
    src = config_dir() / "data" / "black_country" / "gp-reg-pat-prac-all_black-country_2026-04.csv"
    out = tmp_path / "bc.yaml"
    assert cli.main(["economy", "build", "--practices", str(src), "--sub-icb", "D2P2L", "--out", str(out)]) == 0
    assert out.is_file()
    assert cli.main(["economy", "build", "--sub-icb", "D2P2L", "--out", str(tmp_path / "x.yaml")]) == 2
    assert "--practices" in capsys.readouterr().err
