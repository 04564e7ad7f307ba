"""`abm economy build`: an economy YAML from NHS Digital's *Patients Registered at a GP Practice* files.

Reads the all-ages practice file (`gp-reg-pat-prac-all.csv`, sub-ICB-era or CCG-era header),
optionally the five-year age file (`gp-reg-pat-prac-quin-age.csv`), the practice map
(`gp-reg-pat-prac-map.csv`) and a places table (practice -> place, place -> council and provider
names), selects practices by sub-ICB or ICB code and writes an economy the model accepts: the real
practices and list sizes, their age structure, a commissioner and a council per place, and a
provider set per place synthesised from a template (every number sourced).

Light on purpose: the standard library, yaml and `abm.params` (pydantic) only; no model, no mesa.
Bad input raises `ConfigError` (file, field, value, allowed); the CLI prints it as one line, exit 2.
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError, did_you_mean

BANDS = ("0-4", "5-17", "18-44", "45-64", "65-74", "75-84", "85+")
BAND_LOW = (0, 5, 18, 45, 65, 75, 85)
OLDEST = 100  # an open top band ("95+") is spread over 95..OLDEST-1 (all of it lands in 85+ anyway)

PUBLICATION = ("NHS Digital, Patients Registered at a GP Practice ({month}), {file} "
               "(Open Government Licence v3.0), "
               "https://digital.nhs.uk/data-and-information/publications/statistical/patients-registered-at-a-gp-practice "
               "[ref: nhsd-gp-registrations]")

# England's age structure in the model's seven bands, for practices without their own (no age file).
NATIONAL_AGE_SHARE = [0.054, 0.154, 0.348, 0.258, 0.099, 0.062, 0.025]
NATIONAL_AGE_SOURCE = (
    "national profile (no age file given): ONS, Census 2021 first results, England and Wales, usual "
    "residents by five-year age band (table P02), 2022, https://www.ons.gov.uk/peoplepopulationandcommunity/"
    "populationandmigration/populationestimates/bulletins/populationandhouseholdestimatesenglandandwales/"
    "census2021; five-year bands summed into the model's seven, 15-19 split 3/5 to 5-17 and 2/5 to "
    "18-44 (ages spread evenly within a band); rounded to 0.1 percentage point (65+: 18.6%, as published); "
    "residents, not registered patients [ref: ons-census-2021]")
LTC_MEAN = [0.025, 0.07, 0.17, 0.47, 0.95, 1.40, 1.85]
LTC_SOURCE = ("as the default economy: DH, Long-term conditions compendium of information, third edition, "
              "2012, https://www.gov.uk/government/publications/long-term-conditions-compendium-of-"
              "information-third-edition (29% of people with at least one long-term condition; "
              "multimorbidity rising with age) [ref: dh-ltc-2012]")
AGE_SPLIT_NOTE = ("five-year bands summed into the model's seven; 15_19 split 3/5 to 5-17 and 2/5 to 18-44 "
                  "(ages spread evenly within a band); MALE and FEMALE rows added")

# national money per head, to size each place (indicative: the model sets money from activity)
CORE_PER_HEAD = 1732.0
PRIMARY_PER_HEAD = 180.0
ALLOCATION_SOURCE = ("£1,732 and £180 per registered patient, England 2024/25: House of Commons Library, "
                     "research briefing CBP-10031 on ICB allocations 2024/25 [ref: hocl-cbp-10031]")
ASC_SPEND = 27.06e9
ENGLAND_RESIDENTS = 57_690_300
ASC_SOURCE = ("gross current expenditure £27.06bn in 2023-24 (NHS England, Adult Social Care Activity and "
              "Finance Report, England, 2023-24) over the ONS mid-2023 England population of 57,690,300 "
              "[ref: nhsd-ascfr; ons-mid-year]")
FUNDER_SOURCE = ("NHS England allocates the ICBs' budgets: NHS England, Allocations 2025/26, 2025 "
                 "[ref: nhse-allocations]")
SERVICE_PROVIDERS_SOURCE = (
    "assumption: inside each place the default economy's split of each service between provider roles "
    "(configs/economies/dudley.yaml); across places, each place's providers take its share of the "
    "registered population (people use their own place's providers)")
COMMISSIONED_BY_SOURCE = ("NHS services by the place's NHS commissioner; adult social care by its council "
                          "(Care Act 2014) [ref: care-act-2014]")
#: The key of the registrations publication, cited by every organisation's "serves ..." figure.
REGISTRATIONS_REF = "[ref: nhsd-gp-registrations]"

# Each place's providers: role -> (kind, id suffix, default name, the id arrangement files use for
# that part in the default economy, nhs_body, cost_ratio, quality). Names with {place} give one
# organisation per place; names without it one for the whole economy. cost_ratio and quality are the
# default economy's for the same role (assumption).
ROLE_COLUMNS = ("commissioner", "council", "acute", "community", "mental_health", "social_care",
                "gp_federation", "voluntary", "older_people", "private")


@dataclass(frozen=True)
class Role:
    kind: str
    suffix: str
    default: str
    ref: str
    nhs_body: bool
    cost_ratio: float = 1.0
    quality: float = 0.7


ROLES: dict[str, Role] = {
    "commissioner": Role("commissioner", "comm", "{commissioner} ({place})", "ccg", True),
    "council": Role("local_authority", "la", "Council for {place} (name not given)", "dmbc", False),
    "acute": Role("acute", "acute", "{place} acute trust (name not given)", "dgft", True, 1.01, 0.70),
    "community": Role("community", "community", "{place} community health services", "dchs", True, 1.0, 0.72),
    "mental_health": Role("mental_health", "mh", "Mental health trust (name not given)", "bcpft", True, 1.0, 0.68),
    "social_care": Role("social_care", "asc", "{place} adult social care providers", "dasc", False, 1.0, 0.70),
    "gp_federation": Role("gp_federation", "gpfed", "{place} GP federation", "gpfed", False, 1.0, 0.72),
    "voluntary": Role("voluntary", "vcs", "{place} voluntary and community sector", "dcvs", False, 0.95, 0.75),
    "older_people": Role("voluntary", "older", "{place} older people's charities", "ageuk", False, 0.95, 0.75),
    "private": Role("private", "private", "Independent-sector elective provider", "indep", False, 0.95, 0.75),
}

# who delivers each service inside a place, as shares of its activity (the default economy's split)
TEMPLATE: dict[str, dict[str, float]] = {
    "gp_f2f": {"practice": 0.95, "gp_federation": 0.05},
    "gp_digital": {"practice": 0.90, "gp_federation": 0.10},
    "community": {"community": 0.90, "voluntary": 0.10},
    "outpatient": {"acute": 0.90, "private": 0.10},
    "elective": {"acute": 0.85, "private": 0.15},
    "emergency": {"acute": 1.0},
    "mental_health": {"mental_health": 0.90, "voluntary": 0.10},
    "social_care": {"social_care": 0.80, "older_people": 0.20},
}
COMMISSIONED_BY = {s: ("local_authority" if s == "social_care" else "commissioner") for s in TEMPLATE}


# --------------------------------------------------------------------------- reading
@dataclass
class Practice:
    code: str
    sub_icb: str
    postcode: str
    patients: int
    row: int


@dataclass
class Registrations:
    path: str
    era: str                      # "sub-ICB" (from July 2022) or "CCG" (before)
    extract_date: dt.date
    practices: dict[str, Practice] = field(default_factory=dict)
    sub_icb_column: str = "SUB_ICB_LOCATION_CODE"


def _open_rows(path: str | Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("file not found", file=str(p), allowed=what)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise ConfigError("empty file: no header line", file=str(p), allowed=what)
            header = [h.strip().upper() for h in header]
            rows = []
            for i, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    raise ConfigError(f"line {i} has {len(values)} fields, the header {len(header)}", file=str(p))
                rows.append({h: v.strip() for h, v in zip(header, values)} | {"_line": str(i)})
    except UnicodeDecodeError:
        raise ConfigError("not a text CSV file (not UTF-8)", file=str(p), allowed=what) from None
    except csv.Error as exc:
        raise ConfigError(f"not a readable CSV file ({exc})", file=str(p), allowed=what) from None
    return header, rows


def _require(header: list[str], need: tuple[str, ...], path: str, what: str) -> None:
    missing = [c for c in need if c not in header]
    if missing:
        raise ConfigError("missing column", file=str(path), field=missing[0],
                          allowed=f"{what} with columns {', '.join(need)}")


def _count(row: dict, column: str, path: str) -> int:
    text = row[column].replace(",", "")
    if not re.fullmatch(r"-?\d+", text):
        raise ConfigError(f"line {row['_line']}: not a whole number", file=str(path), field=column,
                          value=row[column], allowed="a whole number >= 0")
    n = int(text)
    if n < 0:
        raise ConfigError(f"line {row['_line']}: negative count", file=str(path), field=column, value=n,
                          allowed="a whole number >= 0")
    return n


def parse_extract_date(text: str, path: str, line: str) -> tuple[dt.date, str]:
    """`2026-04-01` (sub-ICB era) or `01JAN2021` (CCG era)."""
    for fmt, style in (("%Y-%m-%d", "iso"), ("%d%b%Y", "ddMONyyyy")):
        try:
            return dt.datetime.strptime(text.strip().title() if style != "iso" else text.strip(), fmt).date(), style
        except ValueError:
            continue
    raise ConfigError(f"line {line}: not a date", file=str(path), field="EXTRACT_DATE", value=text,
                      allowed="YYYY-MM-DD (e.g. 2026-04-01) or DDMONYYYY (e.g. 01JAN2021)")


ALL_AGES = "NHS Digital's all-ages practice file gp-reg-pat-prac-all.csv"


def read_registrations(path: str | Path) -> Registrations:
    """One row per practice (SEX = AGE = ALL); both header eras; counts whole and non-negative."""
    path = str(path)
    header, rows = _open_rows(path, ALL_AGES)
    if "AGE_GROUP_5" in header or "ORG_CODE" in header:
        raise ConfigError("wrong header: this looks like the five-year age file or the practice map "
                          "(pass those as --ages or --map)", file=path, field="CODE",
                          allowed=f"{ALL_AGES} (columns EXTRACT_DATE, SUB_ICB_LOCATION_CODE or CCG_CODE, CODE, "
                                  "POSTCODE, SEX, AGE, NUMBER_OF_PATIENTS)")
    if "SUB_ICB_LOCATION_CODE" in header:
        era, col = "sub-ICB", "SUB_ICB_LOCATION_CODE"
    elif "CCG_CODE" in header:
        era, col = "CCG", "CCG_CODE"
    else:
        raise ConfigError("missing column", file=path, field="SUB_ICB_LOCATION_CODE",
                          allowed="SUB_ICB_LOCATION_CODE (files from July 2022) or CCG_CODE (before)")
    _require(header, ("EXTRACT_DATE", col, "CODE", "SEX", "AGE", "NUMBER_OF_PATIENTS"), path, ALL_AGES)
    if not rows:
        raise ConfigError("no practice rows", file=path, allowed=ALL_AGES)
    out = Registrations(path=path, era=era, extract_date=dt.date.min, sub_icb_column=col)
    dates = set()
    for row in rows:
        if "TYPE" in row and row["TYPE"] and row["TYPE"] != "GP":
            continue
        for column in ("SEX", "AGE"):
            if row[column].upper() != "ALL":
                raise ConfigError(f"line {row['_line']}: not an all-ages row", file=path, field=column,
                                  value=row[column], allowed=f"ALL ({ALL_AGES} has one row per practice)")
        code = row["CODE"].upper()
        if not code:
            raise ConfigError(f"line {row['_line']}: empty practice code", file=path, field="CODE")
        if code in out.practices:
            raise ConfigError(f"line {row['_line']}: practice listed twice (first on line "
                              f"{out.practices[code].row})", file=path, field="CODE", value=code,
                              allowed="one row per practice")
        date, _ = parse_extract_date(row["EXTRACT_DATE"], path, row["_line"])
        dates.add(date)
        out.practices[code] = Practice(code, row[col].upper(), row.get("POSTCODE", ""),
                                       _count(row, "NUMBER_OF_PATIENTS", path), int(row["_line"]))
    if len(dates) > 1:
        raise ConfigError("rows from more than one extract", file=path, field="EXTRACT_DATE",
                          value=", ".join(sorted(d.isoformat() for d in dates)), allowed="one month's file")
    out.extract_date = dates.pop()
    return out


AGE_FILE = "NHS Digital's five-year age file gp-reg-pat-prac-quin-age.csv"


def band_of_label(label: str) -> tuple[int, int] | None:
    """'0_4' -> (0, 5); '95+' -> (95, OLDEST); 'ALL' -> None. Ages lo <= a < hi."""
    text = label.strip().upper().replace(" ", "")
    if text == "ALL":
        return None
    m = re.fullmatch(r"(\d+)[_\-](\d+)", text)
    if m and int(m.group(1)) <= int(m.group(2)):
        return int(m.group(1)), int(m.group(2)) + 1
    m = re.fullmatch(r"(\d+)(\+|_?PLUS|_AND_OVER)", text)
    if m and int(m.group(1)) < OLDEST:
        return int(m.group(1)), OLDEST
    raise ValueError(label)


def to_seven_bands(counts: dict[tuple[int, int], float]) -> list[float]:
    """Spread each band's count evenly over its single years and add them into the model's seven."""
    out = [0.0] * 7
    for (lo, hi), n in counts.items():
        per_year = n / (hi - lo)
        for age in range(lo, hi):
            out[max(i for i, low in enumerate(BAND_LOW) if age >= low)] += per_year
    return out


def read_ages(path: str | Path, codes: list[str]) -> dict[str, list[float]]:
    """Per practice, registered people in the model's seven age bands (GP rows; MALE + FEMALE)."""
    path = str(path)
    header, rows = _open_rows(path, AGE_FILE)
    _require(header, ("ORG_CODE", "SEX", "AGE_GROUP_5", "NUMBER_OF_PATIENTS"), path, AGE_FILE)
    wanted = set(codes)
    by_sex: dict[str, dict[str, dict[tuple[int, int], float]]] = {}
    for row in rows:
        if row.get("ORG_TYPE", "GP").upper() not in ("GP", ""):
            continue
        code = row["ORG_CODE"].upper()
        try:
            band = band_of_label(row["AGE_GROUP_5"])
        except ValueError:
            raise ConfigError(f"line {row['_line']}: unknown age band", file=path, field="AGE_GROUP_5",
                              value=row["AGE_GROUP_5"], allowed="0_4, 5_9, ..., 90_94, 95+ (or ALL)") from None
        n = _count(row, "NUMBER_OF_PATIENTS", path)
        if band is None or code not in wanted:
            continue
        sex = row["SEX"].upper()
        cell = by_sex.setdefault(code, {}).setdefault(sex, {})
        cell[band] = cell.get(band, 0) + n
    out = {}
    for code in codes:
        sexes = by_sex.get(code)
        if not sexes:
            raise ConfigError("selected practice has no rows in the age file (files from different months?)",
                              file=path, field="ORG_CODE", value=code, allowed="the age file of the same release")
        use = [s for s in sexes if s != "ALL"] or ["ALL"]   # MALE + FEMALE; ALL only if nothing else
        merged: dict[tuple[int, int], float] = {}
        for s in use:
            for band, n in sexes[s].items():
                merged[band] = merged.get(band, 0) + n
        seven = to_seven_bands(merged)
        if sum(seven) <= 0:
            raise ConfigError("selected practice has no patients in the age file", file=path,
                              field="NUMBER_OF_PATIENTS", value=code, allowed="a practice with registered patients")
        out[code] = seven
    return out


MAP_FILE = "NHS Digital's practice map gp-reg-pat-prac-map.csv"


def read_map(path: str | Path) -> dict[str, dict[str, str]]:
    """Practice code -> its row of the map (names, PCN, sub-ICB, ICB; STP/CCG in older files)."""
    path = str(path)
    header, rows = _open_rows(path, MAP_FILE)
    _require(header, ("PRACTICE_CODE",), path, MAP_FILE)
    if "ICB_CODE" not in header and "STP_CODE" not in header:
        raise ConfigError("missing column", file=path, field="ICB_CODE",
                          allowed="ICB_CODE (files from July 2022) or STP_CODE (before)")
    out = {}
    for row in rows:
        code = row["PRACTICE_CODE"].upper()
        if not code:
            raise ConfigError(f"line {row['_line']}: empty practice code", file=path, field="PRACTICE_CODE")
        if code in out:
            raise ConfigError(f"line {row['_line']}: practice listed twice", file=path, field="PRACTICE_CODE",
                              value=code, allowed="one row per practice")
        out[code] = {
            "name": row.get("PRACTICE_NAME", ""),
            "pcn": row.get("PCN_NAME", ""),
            "sub_icb": (row.get("SUB_ICB_LOCATION_CODE") or row.get("CCG_CODE", "")).upper(),
            "sub_icb_name": row.get("SUB_ICB_LOCATION_NAME") or row.get("CCG_NAME", ""),
            "icb": (row.get("ICB_CODE") or row.get("STP_CODE", "")).upper(),
            "icb_name": row.get("ICB_NAME") or row.get("STP_NAME", ""),
        }
    return out


PLACES_FILE = "a places table: CSV with columns practice_code,place"
PLACE_INFO_FILE = ("a place table: CSV with columns place,name,council and optionally "
                   + ",".join(c for c in ROLE_COLUMNS if c != "council")
                   + ", a source column per name (e.g. acute_source) and source (for the others)")
SLUG = re.compile(r"[a-z][a-z0-9_]*")


def read_places(path: str | Path, known: set[str]) -> dict[str, str]:
    """Practice code -> place id."""
    path = str(path)
    header, rows = _open_rows(path, PLACES_FILE)
    _require(header, ("PRACTICE_CODE", "PLACE"), path, PLACES_FILE)
    out: dict[str, str] = {}
    for row in rows:
        code, place = row["PRACTICE_CODE"].upper(), row["PLACE"]
        if code not in known:
            hint = did_you_mean(code, known)
            raise ConfigError(f"line {row['_line']}: unknown practice code" + (f"; {hint}" if hint else ""),
                              file=path, field="practice_code", value=code,
                              allowed="a CODE of the all-ages file")
        if not SLUG.fullmatch(place):
            raise ConfigError(f"line {row['_line']}: not a place id", file=path, field="place", value=place,
                              allowed="lower-case letters, digits and _ starting with a letter (e.g. dudley)")
        if code in out and out[code] != place:
            raise ConfigError(f"line {row['_line']}: practice given two places", file=path,
                              field="practice_code", value=code, allowed="one place per practice")
        out[code] = place
    return out


def read_place_info(path: str | Path) -> dict[str, dict[str, str]]:
    """Place id -> name, council name and optional provider names."""
    path = str(path)
    header, rows = _open_rows(path, PLACE_INFO_FILE)
    _require(header, ("PLACE", "NAME", "COUNCIL"), path, PLACE_INFO_FILE)
    known = {"PLACE", "NAME", "SOURCE"} | {c.upper() for c in ROLE_COLUMNS} | {f"{c.upper()}_SOURCE" for c in ROLE_COLUMNS}
    extra = [h for h in header if h not in known]
    if extra:
        hint = did_you_mean(extra[0].lower(), [k.lower() for k in known])
        raise ConfigError("unknown column" + (f"; {hint}" if hint else ""), file=path, field=extra[0],
                          allowed=None if hint else ", ".join(sorted(k.lower() for k in known)))
    out = {}
    for row in rows:
        place = row["PLACE"]
        if place in out:
            raise ConfigError(f"line {row['_line']}: place listed twice", file=path, field="place", value=place)
        for column in ("NAME", "COUNCIL"):
            if not row[column]:
                raise ConfigError(f"line {row['_line']}: empty", file=path, field=column.lower(),
                                  allowed="a name")
        out[place] = {k.lower(): v for k, v in row.items() if k != "_line"}
    return out


# --------------------------------------------------------------------------- building
def _split(text: list[str] | str | None) -> list[str]:
    """'A,B' or ['A', 'B,C'] -> ['A', 'B', 'C']."""
    items = [text] if isinstance(text, str) else (text or [])
    return [c.strip() for item in items for c in item.split(",") if c.strip()]


def _codes(text: list[str] | str | None) -> list[str]:
    return [c.upper() for c in _split(text)]


def _round_shares(values: dict | list, digits: int = 6):
    """Round shares so they still sum to 1 exactly enough (residual on the largest)."""
    keys = list(values) if isinstance(values, dict) else list(range(len(values)))
    vals = [values[k] for k in keys]
    total, unit = sum(vals), 10 ** digits
    exact = [v / total * unit for v in vals]
    units = [int(x + 1e-9) for x in exact]                     # largest remainders get the rest
    for i in sorted(range(len(exact)), key=lambda i: units[i] - exact[i])[:unit - sum(units)]:
        units[i] += 1
    r = [u / unit for u in units]
    return dict(zip(keys, r)) if isinstance(values, dict) else r


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s if s and s[0].isalpha() else f"p_{s}"


def _money(x: float) -> str:
    return f"£{x / 1e6:,.0f}m"


@dataclass
class BuildResult:
    economy: dict
    header: str
    places: list[dict]


def build_economy(registrations: str | Path, *, sub_icb: list[str] | str | None = None,
                  icb: list[str] | str | None = None, ages: str | Path | None = None,
                  mapping: str | Path | None = None, places: str | Path | None = None,
                  place_info: str | Path | None = None, only_places: list[str] | str | None = None,
                  name: str | None = None, command: str | None = None) -> BuildResult:
    """Read the files and return the economy (plain data, in the YAML's order) and its header comment."""
    sub_codes, icb_codes = _codes(sub_icb), _codes(icb)
    if bool(sub_codes) == bool(icb_codes):
        raise ConfigError("give exactly one of --sub-icb or --icb", field="--sub-icb/--icb",
                          allowed="--sub-icb CODE[,CODE...] or --icb CODE[,CODE...] (with --map)")
    if icb_codes and mapping is None:
        raise ConfigError("--icb needs the practice map", field="--icb", value=",".join(icb_codes),
                          allowed="--map gp-reg-pat-prac-map.csv (the all-ages file has no ICB column)")
    if place_info is not None and places is None:
        raise ConfigError("--place-info needs --places", field="--place-info", allowed="--places FILE.csv too")
    keep = _split(only_places)
    if keep and places is None:
        raise ConfigError("--only-place needs --places", field="--only-place", allowed="--places FILE.csv too")
    reg = read_registrations(registrations)
    pmap = read_map(mapping) if mapping is not None else {}

    # selection
    if sub_codes:
        present = sorted({p.sub_icb for p in reg.practices.values()})
        for c in sub_codes:
            if c not in present:
                hint = did_you_mean(c, present)
                raise ConfigError("unknown code" + (f"; {hint}" if hint else ""), file=reg.path,
                                  field=reg.sub_icb_column, value=c,
                                  allowed=f"one of the {len(present)} codes in the file, e.g. {', '.join(present[:8])}")
        selected = [p for p in reg.practices.values() if p.sub_icb in sub_codes]
        how = f"{reg.sub_icb_column} {', '.join(sub_codes)}"
    else:
        present = sorted({m["icb"] for m in pmap.values() if m["icb"]})
        for c in icb_codes:
            if c not in present:
                hint = did_you_mean(c, present)
                raise ConfigError("unknown code" + (f"; {hint}" if hint else ""), file=str(mapping),
                                  field="ICB_CODE", value=c,
                                  allowed=f"one of the {len(present)} codes in the map, e.g. {', '.join(present[:8])}")
        selected = [p for p in reg.practices.values() if pmap.get(p.code, {}).get("icb") in icb_codes]
        how = f"practices whose ICB in the map is {', '.join(icb_codes)}"
        if not selected:
            raise ConfigError("no practice of the all-ages file is in this ICB (files from different months?)",
                              file=str(mapping), field="ICB_CODE", value=",".join(icb_codes))
    place_of: dict[str, str] = {}
    if places is not None:
        place_of = read_places(places, set(reg.practices))
        for p in selected:
            if p.code not in place_of:
                raise ConfigError("selected practice has no place", file=str(places), field="practice_code",
                                  value=p.code, allowed="a row practice_code,place for every selected practice")
        if keep:
            known = sorted({place_of[p.code] for p in selected})
            for k in keep:
                if k not in known:
                    raise ConfigError("no selected practice is in this place", field="--only-place", value=k,
                                      allowed=", ".join(known))
            selected = [p for p in selected if place_of[p.code] in keep]
            how += f", places {', '.join(keep)}"
    empty = [p.code for p in selected if p.patients == 0]
    selected = sorted((p for p in selected if p.patients > 0), key=lambda p: p.code)
    if not selected:
        raise ConfigError("the selection has no practice with registered patients", file=reg.path,
                          field="NUMBER_OF_PATIENTS")
    codes = [p.code for p in selected]
    age_counts = read_ages(ages, codes) if ages is not None else None

    # places
    month = reg.extract_date.strftime("%B %Y")
    info = read_place_info(place_info) if place_info is not None else {}
    names_from = Path(str(place_info)).name if place_info is not None else ""
    if places is None:
        area = ", ".join(sub_codes or icb_codes)
        names = sorted({(pmap.get(c, {}).get("sub_icb_name") if sub_codes else pmap.get(c, {}).get("icb_name")) or ""
                        for c in codes} - {""})
        label = names[0] if len(names) == 1 else (f"Sub-ICB {area}" if sub_codes else f"ICB {area}")
        place_ids = ["all"]
        place_of = {c: "all" for c in codes}
        info = {"all": {"place": "all", "name": label, "council": "", "commissioner": ""}}
        if names:
            info["all"]["commissioner"] = names[0]
            names_from = "the practice map"
    else:
        place_ids = sorted({place_of[c] for c in codes})
        for pid in place_ids:
            if info and pid not in info:
                raise ConfigError("place missing from the place table", file=str(place_info), field="place",
                                  value=pid, allowed="a row for every place in --places")
            info.setdefault(pid, {"place": pid, "name": pid.replace("_", " ").title(), "council": ""})
    icb_label = ""
    if pmap:
        icb_names = sorted({pmap.get(c, {}).get("icb_name", "") for c in codes} - {""})
        icb_label = icb_names[0] if len(icb_names) == 1 else ""
    default_commissioner = icb_label or (f"ICB {', '.join(icb_codes)}" if icb_codes else
                                         f"Sub-ICB location {', '.join(sub_codes)}")
    pop = {pid: sum(p.patients for p in selected if place_of[p.code] == pid) for pid in place_ids}
    n_prac = {pid: sum(1 for c in codes if place_of[c] == pid) for pid in place_ids}
    total = sum(pop.values())
    single = len(place_ids) == 1

    # organisations: one per role and place, merged where several places name the same organisation
    orgs: list[dict] = [{"id": "nhse", "kind": "funder", "name": "NHS England", "nhs_body": True,
                         "source": FUNDER_SOURCE}]
    role_org: dict[tuple[str, str], str] = {}      # (place, role) -> org id
    for role, r in ROLES.items():
        serving: dict[str, list[str]] = {}
        for pid in place_ids:
            given = info[pid].get(role, "")
            nm = given or (default_commissioner if role == "commissioner" and single else
                           r.default.format(place=info[pid]["name"], commissioner=default_commissioner))
            serving.setdefault(nm, []).append(pid)
        for nm, pids in serving.items():
            if single:
                oid = r.suffix
            elif len(pids) == len(place_ids):
                oid = r.suffix
            else:
                oid = "_".join(pids) + "_" + r.suffix
            given = any(info[pid].get(role) for pid in pids)
            share = sum(pop[pid] for pid in pids) / total
            where = ", ".join(info[pid]["name"] for pid in pids)
            src = [f"serves {where}: {sum(pop[p] for p in pids):,} registered"
                   + ("" if single else f" ({share:.1%} of the economy)") + f" {REGISTRATIONS_REF}"]
            if role not in ("commissioner", "council"):
                if not single and len(pids) < len(place_ids):
                    src.append("its shares of activity follow that population share (assumption: people use "
                               "their own place's providers)")
                src.append("cost_ratio and quality as the default economy's organisation of this role (assumption)")
            src.append(f"name from {names_from}" if given else "name synthesised (not in the input)")
            given_src = (info[pid].get(f"{role}_source") or info[pid].get("source", "") for pid in pids)
            extra = "; ".join(x for x in dict.fromkeys(given_src) if x)
            if given and extra:
                src.append(extra)
            o = {"id": oid, "kind": r.kind, "name": nm, "nhs_body": r.nhs_body}
            if r.kind == "local_authority":
                o["vat_recovers"] = True
            if r.kind not in ("commissioner", "local_authority"):
                o["cost_ratio"], o["quality"] = r.cost_ratio, r.quality
            o["source"] = "; ".join(src)
            orgs.append(o)
            for pid in pids:
                role_org[(pid, role)] = oid

    # service providers: the template inside each place, weighted by the place's population
    sp: dict[str, dict[str, float]] = {}
    for s, shares in TEMPLATE.items():
        acc: dict[str, float] = {}
        for pid in place_ids:
            w = pop[pid] / total
            for role, x in shares.items():
                key = "practice" if role == "practice" else role_org[(pid, role)]
                acc[key] = acc.get(key, 0.0) + w * x
        sp[s] = _round_shares(acc)

    # places
    asc_per_head = ASC_SPEND / ENGLAND_RESIDENTS
    place_rows = []
    for pid in place_ids:
        money = (f"{n_prac[pid]} practices, {pop[pid]:,} registered (NHS Digital, Patients Registered at a GP "
                 f"Practice, {month}) {REGISTRATIONS_REF}; indicative yearly money at England averages per head "
                 f"(need weighting not applied): NHS core services {_money(pop[pid] * CORE_PER_HEAD)} and primary "
                 f"medical care {_money(pop[pid] * PRIMARY_PER_HEAD)} ({ALLOCATION_SOURCE}); council adult social "
                 f"care {_money(pop[pid] * asc_per_head)} (£{asc_per_head:,.0f} per resident: {ASC_SOURCE})")
        row = {"id": pid, "name": info[pid]["name"], "commissioner": role_org[(pid, "commissioner")],
               "local_authority": role_org[(pid, "council")], "source": money}
        if not single:
            row["aliases"] = {ROLES[role].ref: role_org[(pid, role)] for role in ROLES
                              if ROLES[role].ref != role_org[(pid, role)]}
        place_rows.append(row)

    # practices
    contract_note = "contract type not in NHS Digital's files: every practice gms (unknown)"
    prac_rows = []
    for p in selected:
        row = {"id": p.code, "list_size": p.patients, "contract": "gms", "place": place_of[p.code]}
        nm = pmap.get(p.code, {}).get("name")
        if nm:
            row["name"] = nm
        if age_counts is not None:
            row["age_share"] = _round_shares(age_counts[p.code], 6)
        prac_rows.append(row)
    if age_counts is not None:
        summed = [sum(age_counts[c][i] for c in codes) for i in range(7)]
        age_share = _round_shares(summed, 4)
        age_src = (f"registered patients of the selected practices by age, "
                   f"{PUBLICATION.format(month=month, file='five-year age file gp-reg-pat-prac-quin-age.csv')}; "
                   f"{AGE_SPLIT_NOTE}; each practice also carries its own age_share")
    else:
        age_share = list(NATIONAL_AGE_SHARE)
        age_src = NATIONAL_AGE_SOURCE + "; the same for every practice"
    era = ("sub-ICB-era header" if reg.era == "sub-ICB" else "CCG-era header")
    prac_src = (f"{PUBLICATION.format(month=month, file=Path(reg.path).name)}, extract {reg.extract_date.isoformat()} "
                f"({era}): {how}; list sizes as published; {contract_note}"
                + (f"; names from the practice map {Path(str(mapping)).name}" if pmap else "; names not in the file")
                + (f"; {len(empty)} practice(s) with no registered patients left out ({', '.join(empty)})" if empty else ""))

    title = name or (info[place_ids[0]]["name"] if single else (icb_label or f"Sub-ICB {', '.join(sub_codes)}"))
    description = (f"{len(codes)} GP practices and {total:,} registered people ({month}, NHS Digital) in "
                   f"{len(place_ids)} place(s) ({', '.join(info[p]['name'] for p in place_ids)}), each with "
                   "its own NHS commissioner and council; providers synthesised per place from the default "
                   "economy's template (acute, community, mental health, adult social care, GP federation, "
                   "two voluntary-sector organisations, one independent-sector elective provider). "
                   "Built by `abm economy build`.")
    economy = {
        "name": title,
        "description": description,
        "population": {
            "total": {"value": total, "unit": "registered people",
                      "source": f"sum of the practices' list sizes: {PUBLICATION.format(month=month, file=Path(reg.path).name)}"},
            "age_bands": {"value": list(BANDS), "unit": "years", "source": "model convention"},
            "age_share": {"value": age_share, "unit": "share of population", "source": age_src},
            "ltc_mean": {"value": list(LTC_MEAN),
                         "unit": "mean number of long-term conditions, by age band", "source": LTC_SOURCE},
        },
        "organisations": orgs,
        "service_providers": {
            "value": sp, "unit": "share of activity",
            "source": SERVICE_PROVIDERS_SOURCE},
        "commissioned_by": {
            "value": dict(COMMISSIONED_BY),
            "unit": "organisation id, or each place's own commissioner / local_authority",
            "source": COMMISSIONED_BY_SOURCE},
        "places": place_rows,
    }
    if single:
        economy["aliases"] = {ROLES[role].ref: role_org[(place_ids[0], role)] for role in ROLES
                              if ROLES[role].ref != role_org[(place_ids[0], role)]}
    economy["practices"] = {"source": prac_src, "unit": "registered patients", "list": prac_rows}

    lines = ["Built by `abm economy build`; rebuild rather than edit by hand."]
    if command:
        lines.append(f"Command: {command}")
    lines.append(f"Data: {PUBLICATION.format(month=month, file=Path(reg.path).name)}")
    lines.append("")
    lines.append(f"{'place':<16}{'practices':>10}{'registered':>12}  council")
    for pid in place_ids:
        council = next(o["name"] for o in orgs if o["id"] == role_org[(pid, "council")])
        lines.append(f"{pid:<16}{n_prac[pid]:>10}{pop[pid]:>12,}  {council}")
    lines.append(f"{'total':<16}{len(codes):>10}{total:>12,}")
    if single:
        lines += ["", "`aliases` lets every arrangement file (written for the default economy's ids) run here."]
    else:
        lines += ["", "Several places: each place's `aliases` names its organisation for each id the "
                  "arrangement files use (holder, alliance members), for a multi-place model."]
    header = "\n".join(f"# {line}".rstrip() for line in lines) + "\n"
    return BuildResult(economy=economy, header=header, places=place_rows)


# --------------------------------------------------------------------------- writing
def _flow(obj) -> str:
    text = yaml.safe_dump(obj, default_flow_style=True, sort_keys=False, width=1 << 20, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _block(obj, indent: int = 0) -> str:
    text = yaml.safe_dump(obj, default_flow_style=False, sort_keys=False, width=110, allow_unicode=True)
    pad = " " * indent
    return "".join(pad + line + "\n" for line in text.splitlines())


def to_yaml(result: BuildResult) -> str:
    eco = result.economy
    out = [result.header]
    out.append(_block({"name": eco["name"], "description": eco["description"]}))
    out.append("\npopulation:\n")
    for key, leaf in eco["population"].items():
        out.append(f"  {key}:\n")
        out.append(f"    value: {_flow(leaf['value'])}\n")
        out.append(_block({k: v for k, v in leaf.items() if k != "value"}, 4))
    out.append("\norganisations:\n")
    out += [f"  - {_flow(o)}\n" for o in eco["organisations"]]
    out.append("\n# Who delivers each service, as shares of activity. `practice` means the patient's registered practice.\n")
    out.append("service_providers:\n  value:\n")
    out += [f"    {s}: {_flow(sh)}\n" for s, sh in eco["service_providers"]["value"].items()]
    out.append(_block({k: v for k, v in eco["service_providers"].items() if k != "value"}, 2))
    out.append("\n# Which commissioner pays for each service: each place's own NHS commissioner or council.\n")
    out.append("commissioned_by:\n  value:\n")
    out += [f"    {s}: {who}\n" for s, who in eco["commissioned_by"]["value"].items()]
    out.append(_block({k: v for k, v in eco["commissioned_by"].items() if k != "value"}, 2))
    out.append("\nplaces:\n")
    out += [f"  - {_flow(p)}\n" for p in eco["places"]]
    if "aliases" in eco:
        out.append("\n# the ids the arrangement files use (the default economy's) -> this economy's organisations\n")
        out.append(f"aliases: {_flow(eco['aliases'])}\n")
    out.append("\npractices:\n")
    out.append(_block({k: v for k, v in eco["practices"].items() if k != "list"}, 2))
    out.append("  list:\n")
    out += [f"    - {_flow(p)}\n" for p in eco["practices"]["list"]]
    return "".join(out)


def write_economy(result: BuildResult, out: str | Path) -> Path:
    """Write atomically (temporary file beside the target, then rename) after checking that the
    economy loads; on any failure nothing is left behind."""
    from .params import load_economy

    out = Path(out)
    if out.suffix not in (".yaml", ".yml"):
        raise ConfigError("the economy file must end in .yaml or .yml", field="--out", value=str(out))
    if not out.parent.is_dir():
        raise ConfigError("folder does not exist", field="--out", value=str(out.parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(to_yaml(result))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)           # mkstemp makes it private; give it the usual mode
        try:
            load_economy(tmp)                   # what we write must load
        except ConfigError as exc:
            raise ConfigError(f"the built economy does not load: {exc.detail}", file=str(out), field=exc.field,
                              value=exc.value, allowed=exc.allowed) from None
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def build(registrations, out, **kwargs) -> BuildResult:
    """Read, build and write; returns what was written."""
    result = build_economy(registrations, **kwargs)
    write_economy(result, out)
    return result
