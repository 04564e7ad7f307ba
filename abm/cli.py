"""The `abm` command line: run, report, viz, bench, validate, economy build.

Exit codes: 0 success, 2 invalid input (one line on stderr naming file, field, value and what is
allowed; no traceback), 1 anything else. Set ABM_DEBUG=1 to see tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from abm.errors import ConfigError, int_arg

#: The terminal summary's tables: (title, metrics), four metrics each so that a table of every
#: shipped arrangement fits SUMMARY_WIDTH columns.
HEADLINE_TABLES = (
    ("Integration", ("integrated_handoff_share", "population_payment_share",
                     "prevention_spend_share", "gp_practices_integrated")),
    ("Fragmentation", ("continuity_of_care", "orgs_per_patient", "handoffs_per_1000",
                       "transaction_cost_share")),
    ("Risk and outcomes", ("provider_failures", "emergency_admissions_per_1000",
                           "cost_per_capita", "health_index")),
)
HEADLINE = tuple(m for _, ms in HEADLINE_TABLES for m in ms)
SUMMARY_WIDTH = 100  # the terminal summary never needs more columns than this


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str):
        print(f"{self.prog}: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


_positive = int_arg(1)
_integer = int_arg()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="abm", description="Agent-based model of NHS contracting arrangements.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run an experiment (default: the packaged compare.yaml)")
    run.add_argument("experiment", nargs="?", help="experiment YAML file")
    run.add_argument("--out", help="output directory (default reports/<experiment name>)")
    run.add_argument("--replications", type=_integer, help="override replications")
    run.add_argument("--seed", type=_integer, help="override the base seed")
    run.add_argument("--months", type=_integer, help="override the horizon")
    run.add_argument("--engine", choices=("local", "dask"),
                     help="local process pool (default) or dask (implied by --scheduler)")
    run.add_argument("--workers", type=_positive, help="worker processes (default: all cores)")
    run.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    run.add_argument("--resume", metavar="DIR", help="continue the interrupted run with this --out")
    run.add_argument("--overwrite", action="store_true", help="replace finished results already in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    run.add_argument("--static", metavar="DIR", help="also write PNG and SVG of every report figure here")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="rebuild report.html from stored results")
    rep.add_argument("results_dir")
    rep.add_argument("--static", metavar="DIR", help="also write PNG and SVG of every figure here")
    rep.set_defaults(func=cmd_report)

    viz = sub.add_parser("viz", help="serve the browser visualisation")
    viz.add_argument("--port", type=_positive, default=8765)
    viz.add_argument("--host", default="127.0.0.1")
    viz.set_defaults(func=cmd_viz)

    # bench owns its options (--patients, --months, --arrangement, ...): main() hands them over
    sub.add_parser("bench", help="measure throughput (last line is JSON); see 'abm bench --help'",
                   add_help=False)

    eco = sub.add_parser("economy", help="build an economy file from NHS Digital's practice registers")
    eco_sub = eco.add_subparsers(dest="economy_command", required=True, parser_class=_Parser)
    b = eco_sub.add_parser(
        "build", help="economy YAML from gp-reg-pat-prac-all.csv (and optional age, map and places files)",
        description="Build an economy YAML from NHS Digital's 'Patients Registered at a GP Practice' files: "
                    "the selected practices with their list sizes, a commissioner and a council per place, "
                    "and providers synthesised per place. Example: abm economy build gp-reg-pat-prac-all.csv "
                    "--sub-icb D2P2L --out my_system.yaml")
    b.add_argument("registrations", metavar="ALL_AGES.csv", nargs="?",
                   help="the all-ages file gp-reg-pat-prac-all.csv (sub-ICB-era or CCG-era header)")
    b.add_argument("--practices", metavar="ALL_AGES.csv", help="the same file, as a flag")
    b.add_argument("--sub-icb", action="append", metavar="CODE[,CODE]",
                   help="select the practices of these sub-ICB locations (CCG codes in older files)")
    b.add_argument("--icb", action="append", metavar="CODE[,CODE]",
                   help="select the practices of these ICBs (needs --map)")
    b.add_argument("--ages", metavar="QUIN_AGE.csv",
                   help="five-year age file gp-reg-pat-prac-quin-age.csv: each practice's own age structure")
    b.add_argument("--map", metavar="MAP.csv", help="practice map gp-reg-pat-prac-map.csv (ICBs, names)")
    b.add_argument("--places", metavar="PLACES.csv", help="CSV practice_code,place: split into places")
    b.add_argument("--place-info", metavar="PLACE_INFO.csv",
                   help="CSV place,name,council[,commissioner,acute,community,mental_health,social_care,"
                        "gp_federation,voluntary,older_people,private,source]: names per place")
    b.add_argument("--only-place", action="append", metavar="PLACE[,PLACE]",
                   help="keep only the practices of these places (from --places)")
    b.add_argument("--name", help="the economy's name (default: from the place or ICB)")
    b.add_argument("--out", "-o", required=True, metavar="ECONOMY.yaml", help="where to write the economy")
    b.set_defaults(func=cmd_economy_build)

    val = sub.add_parser("validate", help="check experiment, economy or arrangement files")
    val.add_argument("files", nargs="+", metavar="FILE.yaml")
    val.set_defaults(func=cmd_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["bench"]:
            return cmd_bench(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except ConfigError as exc:
        print(f"abm: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("abm: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, for users
        if os.environ.get("ABM_DEBUG"):
            raise
        print(f"abm: error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------- run
def cmd_run(args) -> int:
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from abm.experiment import run_experiment

    if args.engine == "local" and args.scheduler:
        raise ConfigError("--scheduler needs the dask engine", field="--engine", value="local",
                          allowed="--engine dask, or leave --engine out")
    engine = args.engine or ("dask" if args.scheduler else "local")
    err = Console(stderr=True)
    cli = {"replications": args.replications, "seed": args.seed, "months": args.months}
    bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=args.quiet)
    task = bar.add_task("runs", total=None)

    plain = {"step": None}  # without a terminal (CI logs), a line every ~10% instead of a bar

    def progress(done: int, total: int) -> None:
        if args.quiet:
            return
        if not err.is_terminal:
            step = max(1, total // 10)
            if plain["step"] is None or done == total or done // step != plain["step"]:
                plain["step"] = done // step
                err.print(f"runs {done}/{total}", highlight=False)
            return
        if not bar.live.is_started:  # only once input is valid and runs begin
            bar.start()
        bar.update(task, completed=done, total=total)

    def log(msg: str) -> None:
        if not args.quiet:
            err.print(msg, highlight=False, markup=False, soft_wrap=True)

    try:
        out = run_experiment(args.experiment, out=args.out, engine=engine,
                             workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                             cli_overrides=cli, progress=progress, log=log, overwrite=args.overwrite)
    finally:
        bar.stop()
    if not args.quiet:
        for economy in _economies_of(out):   # a study across economies: one table per economy
            if economy is not None:
                print(f"economy: {economy}")
            print_summary(out, economy=economy)
        print_robustness(out)
    print(f"results: {out}")
    return _report(out, missing_ok=True, static=args.static)


def _report(out: Path, missing_ok: bool, static: str | None = None) -> int:
    try:
        from abm.report import build_report
    except ImportError as exc:
        if exc.name not in (None, "abm.report") and "abm.report" not in str(exc):
            raise
        if missing_ok:
            print("report: skipped (abm.report is not available yet)")
            return 0
        print("abm report: not available yet", file=sys.stderr)
        return 1
    try:
        path = build_report(Path(out), static_dir=Path(static) if static else None)
    except ValueError as exc:
        if type(exc).__name__ != "ReportInputError":
            raise
        raise ConfigError(str(exc), field="RESULTS_DIR", value=str(out)) from None
    print(f"report: {path}")
    return 0


def _cell(row, metric: str, baseline: str | None, arrangement: str) -> str:
    """Mean, [95% interval] and the paired difference from the baseline (with * when its
    interval excludes zero), formatted as the report formats them (per cent, £, ...)."""
    import pandas as pd
    from abm.style import format_value, metric_unit
    if row is None or not pd.notna(row.get("mean")):
        return "–"
    unit = metric_unit(metric)
    lines = [format_value(row["mean"], unit)]
    if pd.notna(row.get("ci_low")) and pd.notna(row.get("ci_high")):
        lines.append(f"[{format_value(row['ci_low'], unit)}, {format_value(row['ci_high'], unit)}]")
    if arrangement == baseline:
        lines.append("baseline")
    elif pd.notna(row.get("diff_mean")):
        lo, hi = row.get("diff_ci_low"), row.get("diff_ci_high")
        sig = pd.notna(lo) and pd.notna(hi) and (lo > 0 or hi < 0)
        lines.append(f"Δ {format_value(row['diff_mean'], unit, signed=True)}{'*' if sig else ''}")
    return "\n".join(lines)


def _share(row) -> str:
    """A risk share and its (asymmetric, bootstrap) interval, to two decimals."""
    if row is None or not math.isfinite(row["mean"]):
        return "–"
    def f2(x):
        return f"{round(x, 2) + 0.0:.2f}"                 # never "-0.00"
    return f2(row["mean"]) + (f"\n[{f2(row['ci_low'])}, {f2(row['ci_high'])}]"
                              if math.isfinite(row["ci_low"]) else "")


def summary_console(file=None):
    """A rich Console at most SUMMARY_WIDTH columns wide (narrower on a narrower terminal)."""
    from rich.console import Console
    probe = Console(file=file)
    width = min(probe.width, SUMMARY_WIDTH) if probe.is_terminal else SUMMARY_WIDTH
    return Console(file=file, width=width)


def print_robustness(out: Path) -> None:
    """One line naming the robust conclusions, when the run wrote robustness.csv."""
    import pandas as pd
    from abm.robustness import FILE, summary_line
    path = Path(out) / FILE
    if path.is_file():
        print(summary_line(pd.read_csv(path)))


def _economies_of(out: Path) -> list[str | None]:
    """The economies of a study across economies (from its manifest), else [None]."""
    import json
    path = Path(out) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    return [e["name"] for e in manifest.get("economies") or []] or [None]


def _of_economy(df, economy: str | None):
    return df if economy is None or "economy" not in df.columns else df[df["economy"] == economy]


def print_summary(out: Path, console=None, economy: str | None = None) -> None:
    """The report's final-year table in the terminal (same numbers, same units, at the same
    points: the defaults of a sweep, or every point when it has none there), three tables of
    four metrics, then who bears cost risk (of one economy in a study across economies); never
    wider than SUMMARY_WIDTH columns."""
    from rich.table import Table
    from abm.report._data import headline_table, load
    from abm.style import metric_label

    data = load(out)
    if economy is not None:
        from abm.report._systems import of_economy
        data = of_economy(data, economy)
    table = headline_table(data)
    rows = {(str(r["arrangement"]), str(r["metric"])): r for _, r in table.iterrows()}
    arrangements = data.arrangements
    console = console or summary_console()
    where = {"defaults": ", at the default parameters",
             "all": ", pooled over every sweep point (none is at the defaults)"}.get(data.scope, "")
    base = data.baseline
    caption = (f"final-year mean and [95% interval] over {data.runs_word}{where}"
               + (f"; Δ: paired difference from {base}, * when its 95% interval excludes zero"
                  if base else ""))
    if data.scope == "all":
        console.print("Note: the design has no points at the default parameters (add "
                      "`defaults:` under `uncertainties`); these values pool every sweep point, "
                      "so their intervals include the swept parameters' variation.",
                      highlight=False)
    shown = [(title, [m for m in ms if any((a, m) in rows for a in arrangements)])
             for title, ms in HEADLINE_TABLES]
    shown = [(t, ms) for t, ms in shown if ms]
    for i, (title, metrics) in enumerate(shown):
        t = Table(title=f"Arrangements compared: {title.lower()}", show_lines=True,
                  caption=caption if i == len(shown) - 1 else None, caption_justify="left")
        t.add_column("arrangement", style="bold")
        for m in metrics:
            t.add_column(metric_label(m), justify="right")
        for a in arrangements:
            t.add_row(a, *[_cell(rows.get((a, m)), m, base, a) for m in metrics])
        console.print(t)
    print_incidence(out, console, data.base_point, economy=economy)
    parties = [m for m in table["metric"].unique() if str(m).startswith("risk_share.")]
    if parties:
        from abm.summary import COVARIANCE_LABEL, MIN_BOOTSTRAP_N
        n_cov = int(table.loc[table["metric"].isin(parties), "n"].max())
        if n_cov < MIN_BOOTSTRAP_N:
            console.print(f"{COVARIANCE_LABEL} (covariance risk shares): not shown, {n_cov} "
                          f"run(s) per arrangement are too few for an interval (need "
                          f"{MIN_BOOTSTRAP_N}+); see summary.csv")
            return
        notes = (" ".join(str(x) for x in data.summary.loc[data.summary["metric"].isin(parties),
                                                           "note"].dropna().unique())
                 if data.summary is not None and "note" in data.summary else "")
        caveat = ("; Var(C) is mostly sampled baseline (replicates' own populations), not who "
                  "bears a given risk" if "sampled baseline" in notes else "")
        r = Table(title=COVARIANCE_LABEL.capitalize(), caption_justify="left",
                  caption=f"−Cov(Rₚ, C)/Var(C) over {n_cov} runs, \\[bootstrap 95% interval]; rows "
                          f"sum to 1{caveat}")
        r.add_column("arrangement", style="bold")
        for m in parties:
            r.add_column(m.removeprefix("risk_share."), justify="right")
        for a in arrangements:
            r.add_row(a, *[_share(rows.get((a, m))) for m in parties])
        console.print(r)


def _side_cell(row) -> str:
    """'0.91 ± 0.02' (t-interval half-width), '0.91' without an interval, '–' if undefined."""
    if row is None or not math.isfinite(row["share"]):
        return "–"
    share = round(row["share"], 2) + 0.0                   # never "-0.00"
    if not math.isfinite(row["ci_low"]):
        return f"{share:.2f}"
    return f"{share:.2f} ± {(row['ci_high'] - row['ci_low']) / 2:.2f}"


def print_incidence(out: Path, console, point: int = 0, economy: str | None = None) -> None:
    """Who bears which risk: holder side vs commissioner side, sources × arrangements."""
    import json
    import pandas as pd
    from rich.table import Table
    from abm import risk

    out = Path(out)
    if not (out / "risk_runs.csv").is_file() or not (out / "runs.csv").is_file():
        return
    manifest = json.loads((out / "manifest.json").read_text()) if (
        out / "manifest.json").is_file() else {}
    config = manifest.get("config") or {}
    specs = manifest.get("risk_sources") or risk.resolve(config.get("risk_sources") or [])
    if not specs:
        return
    runs, pert = pd.read_csv(out / "runs.csv"), pd.read_csv(out / "risk_runs.csv")
    runs, pert = _of_economy(runs, economy), _of_economy(pert, economy)
    runs, pert = runs[runs["point"] == point].copy(), pert[pert["point"] == point].copy()
    for df in (runs, pert):
        df["arrangement"] = df["arrangement"].astype(str)
    sides = risk.incidence(runs, pert, specs, int(config.get("months") or 0),
                           float(config.get("population_scale") or 1.0), groups=risk.SIDES)
    up = sides[sides["direction"] == "up"]
    idx = {(r.arrangement, r.source, r.party): r._asdict() for r in up.itertuples(index=False)}
    arrangements = list(dict.fromkeys(up["arrangement"]))
    sources = [x for x in risk.SOURCE_NAMES if x in set(up["source"])]
    n = int(up["n"].max()) if len(up) else 0
    for side, who in (("holder side", "lead + providers"),
                      ("commissioner side", "funder + commissioner")):
        title = f"Who bears which risk: {side} ({who})"
        t = Table(title=title, min_width=len(title) + 4,
                  caption=f"share −ΔR/ΔC of each source (up) in paired runs, mean ± 95% interval "
                          f"half-width over {n} replicates; – where the source changed no money; "
                          "every party in risk_incidence.csv")
        t.add_column("source", style="bold")
        for a in arrangements:  # spaced keys wrap in a narrow column instead of being cut
            t.add_column(a.replace("_", " "), justify="right")
        for x in sources:
            t.add_row(x, *[_side_cell(idx.get((a, x, side))) for a in arrangements])
        console.print(t)


# --------------------------------------------------------------------------- others
def cmd_report(args) -> int:
    out = Path(args.results_dir)
    if not (out / "results.parquet").is_file():
        raise ConfigError("not an abm results directory (no results.parquet)", field="RESULTS_DIR",
                          value=str(out), allowed="the --out directory of a finished 'abm run'")
    return _report(out, missing_ok=False, static=args.static)


def _optional(*modules: str):
    """The first importable module of `modules`, or None if none exists yet."""
    import importlib
    for name in modules:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
    return None


def cmd_viz(args) -> int:
    mod = _optional("abm.viz", "abm.app")
    if mod is None or not hasattr(mod, "serve"):
        print("abm viz: not available yet", file=sys.stderr)
        return 1
    return mod.serve(args.host, args.port) or 0


def cmd_bench(argv: list[str]) -> int:
    mod = _optional("abm.bench")
    if mod is None or not hasattr(mod, "main"):
        print("abm bench: not available yet", file=sys.stderr)
        return 1
    return mod.main(argv) or 0


def cmd_economy_build(args) -> int:
    import shlex
    from abm.economy import build

    if (args.registrations is None) == (args.practices is None):
        raise ConfigError("give the all-ages practice file once: as ALL_AGES.csv or --practices FILE",
                          field="--practices", allowed="one file")
    args.registrations = args.registrations or args.practices

    argv = ["abm", "economy", "build", args.registrations]
    for flag, value in (("--sub-icb", args.sub_icb), ("--icb", args.icb), ("--ages", args.ages),
                        ("--map", args.map), ("--places", args.places), ("--place-info", args.place_info),
                        ("--only-place", args.only_place), ("--name", args.name), ("--out", args.out)):
        for v in (value if isinstance(value, list) else [value] if value is not None else []):
            argv += [flag, v]
    result = build(args.registrations, args.out, sub_icb=args.sub_icb, icb=args.icb, ages=args.ages,
                   mapping=args.map, places=args.places, place_info=args.place_info,
                   only_places=args.only_place, name=args.name, command=shlex.join(argv))
    eco = result.economy
    print(f"{args.out}: {len(eco['practices']['list'])} practices, "
          f"{eco['population']['total']['value']:,} registered people, {len(result.places)} place(s): "
          + ", ".join(p["name"] for p in result.places))
    return 0


def cmd_validate(args) -> int:
    from abm.experiment import load_experiment, plan_points, read_yaml
    from abm import catalogue, params

    for file in args.files:
        data = read_yaml(file)
        if isinstance(data, dict) and ("organisations" in data or "population" in data):
            eco = params.load_economy(file)
            print(f"{file}: ok (economy '{eco.get('name', '?')}')")
        elif isinstance(data, dict) and ("standard_payment" in data or "key" in data):
            entry = catalogue.load_file(file)  # as `abm run` checks an `arrangements:` file
            print(f"{file}: ok (arrangement '{entry.key}', label '{entry.label}')")
        else:
            from abm.experiment import build_risk_tasks
            exp, _ = load_experiment(file)
            points = plan_points(exp)
            pts = len(points)
            n_eco = len(exp.economies or [None])
            runs = n_eco * len(exp.arrangements) * pts * exp.replications
            paired = len(build_risk_tasks(exp, points))
            extra = (f" + {paired} paired risk-source runs ({len(exp.risk_sources)} sources)"
                     if exp.risk_sources else "")
            ecos = f"{n_eco} economies × " if exp.economies is not None else ""
            print(f"{file}: ok (experiment '{exp.name}': {ecos}{len(exp.arrangements)} arrangements × "
                  f"{pts} point(s) × {exp.replications} replicates = {runs} runs{extra} of "
                  f"{exp.months} months)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
