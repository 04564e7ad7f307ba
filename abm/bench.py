"""`abm bench`: throughput and memory of the model, and its speed-up over a naive Mesa reference.

Method (as Mesa's own `benchmarks/global_benchmark.py`): set-up (the model constructor) and run
(`months` calls of `step()`, full metrics and DataCollector included) are timed apart with
`time.perf_counter`, and the fastest of `--repeats` runs is kept. One untimed warm-up run on a
small model comes first (imports, caches). Garbage collection stays enabled, as in Mesa's
benchmarks, but `gc.collect()` runs before every timed section; `--gc-disable` switches the
collector off inside timed sections instead.

Peak memory is the process's peak resident set (VmHWM on Linux, which equals
`resource.getrusage(RUSAGE_SELF).ru_maxrss` for a process that was not forked from a bigger one;
ru_maxrss elsewhere): process-wide and never decreasing, so it is read right after the model runs
and before the reference; `--scaling` runs each size in a fresh subprocess so every size has its
own peak (ru_maxrss would be inherited from the parent across fork+exec; VmHWM is not).

The last line printed is one JSON object: at least `patients`, `months`, `seconds`
(best run time), `patient_months_per_s`, `peak_rss_mb`; also `setup_seconds`,
`speedup_vs_mesa_agents` and the reference's own numbers.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import int_arg
from .params import ARRANGEMENTS

SCALING_SIZES = (30_000, 100_000, 318_492, 1_000_000, 3_200_000)
TARGET_SECONDS = 2.0          # issue 7: one 120-month replication at default scale
TARGET_SETUP = 1.0
TARGET_KB_PER_PATIENT = 1.0   # plus a fixed 300 MB
TARGET_FIXED_MB = 300.0


# --------------------------------------------------------------------------- helpers
def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB.

    On Linux this is VmHWM from /proc/self/status (the peak of this process image; unlike
    ru_maxrss it is not inherited across fork+exec, so a subprocess reports its own peak), else
    `resource.getrusage(RUSAGE_SELF).ru_maxrss` (KB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


@contextmanager
def timed_section(gc_disable: bool):
    """gc.collect() before; optionally no collector inside."""
    gc.collect()
    was = gc.isenabled()
    if gc_disable:
        gc.disable()
    try:
        yield
    finally:
        if gc_disable and was:
            gc.enable()


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def default_population(economy=None) -> int:
    from .params import load_economy
    return int(load_economy(economy)["population"]["total"]["value"])


def model_kwargs(patients: int | None, economy=None) -> dict:
    """Constructor arguments giving about `patients` people: a fraction of the economy (default: the
    built-in one), or (above its size) the economy with a larger registered population (lists scaled)."""
    total = default_population(economy)
    eco = {} if economy is None else {"economy": str(economy)}
    if patients is None or patients == total:
        return {"population_scale": 1.0, **eco}
    if patients < total:
        return {"population_scale": patients / total, **eco}
    return {"population_scale": 1.0, "economy__population__total": int(patients), **eco}


# --------------------------------------------------------------------------- the model
def time_model(arrangement: str, patients: int | None, months: int, repeats: int = 3, seed: int = 1,
               gc_disable: bool = False, economy=None) -> dict:
    """Best-of-`repeats` set-up and run times of one arrangement."""
    from .model import ContractingModel
    kw = model_kwargs(patients, economy)
    best_setup = best_run = best_cpu = float("inf")
    n0 = pm = 0
    coc = None
    for _ in range(max(1, repeats)):
        with timed_section(gc_disable):
            t0 = time.perf_counter()
            m = ContractingModel(arrangement=arrangement, rng=seed, **kw)
            setup = time.perf_counter() - t0
        n0 = m.pop.n
        sizes = []
        with timed_section(gc_disable):
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(months):
                sizes.append(m.pop.n)   # an attribute read: people simulated this month
                m.step()
            run = time.perf_counter() - t0
            cpu = time.process_time() - c0
        pm = sum(sizes)
        coc = m.metrics.get("continuity_of_care")
        best_setup, best_run, best_cpu = min(best_setup, setup), min(best_run, run), min(best_cpu, cpu)
        del m
        gc.collect()
    return {"arrangement": arrangement, "patients": n0, "months": months, "patient_months": pm,
            "setup_seconds": best_setup, "seconds": best_run, "cpu_seconds": best_cpu,
            "patient_months_per_s": pm / best_run if best_run > 0 else float("inf"),
            "seconds_per_120_months": best_run * 120 / months if months else 0.0,
            "continuity_of_care": coc}


def time_interleaved(arrangement: str, patients: int | None, months: int, repeats: int, seed: int,
                     gc_disable: bool, economy) -> tuple[dict, dict]:
    """Best-of-`repeats` times of `economy` and of the default economy (its own size), the two run in
    turn so that both see the same load on the machine; also each turn's own ratio (`pair_ratios`, per
    patient-month), whose spread shows how much the machine's noise moves the ratio of the bests."""
    best = [None, None]
    pairs = []
    for _ in range(max(1, repeats)):
        turn = []
        for i, (n, eco) in enumerate(((patients, economy), (None, None))):
            r = time_model(arrangement, n, months, 1, seed, gc_disable, eco)
            turn.append(r)
            b = best[i]
            if b is None:
                best[i] = r
                continue
            for key in ("setup_seconds", "seconds", "cpu_seconds"):
                b[key] = min(b[key], r[key])
            b["patient_months_per_s"] = b["patient_months"] / b["seconds"] if b["seconds"] > 0 else float("inf")
            b["seconds_per_120_months"] = b["seconds"] * 120 / months if months else 0.0
        pairs.append(linear_scaling(*turn)["ratio"])
    best[0]["pair_ratios"] = pairs
    return best[0], best[1]


def time_alternating(arrangement: str, patients: int | None, months: int, seed: int, economy,
                     block: int = 12) -> dict:
    """Both economies built, then stepped in turn `block` months at a time, CPU time summed per economy:
    the machine's drift during a run (here up to 15% within minutes) falls on both alike, which runs one
    after the other cannot promise. Both are in memory at once, so it runs after peak memory is read."""
    from .model import ContractingModel
    models = [ContractingModel(arrangement=arrangement, rng=seed, **model_kwargs(n, eco))
              for n, eco in ((patients, economy), (None, None))]
    cpu, pm = [0.0, 0.0], [0, 0]
    blocks = []                                  # each block's own ratio (CPU per patient-month)
    gc.collect()
    for start in range(0, months, block):
        here = []
        for i, m in enumerate(models):
            c0, n0 = time.process_time(), pm[i]
            for _ in range(min(block, months - start)):
                pm[i] += m.pop.n
                m.step()
            c = time.process_time() - c0
            cpu[i] += c
            here.append(c / (pm[i] - n0))
        if here[1] > 0:
            blocks.append(here[0] / here[1])
    per = [c / n if n else float("nan") for c, n in zip(cpu, pm)]
    ratio = per[0] / per[1] if per[1] > 0 else float("nan")
    return {"alternating_cpu_ratio": ratio, "alternating_block_months": block,
            "alternating_cpu_seconds": cpu[0], "alternating_reference_cpu_seconds": cpu[1],
            "alternating_block_ratios": blocks,
            "alternating_block_ratio_median": float(statistics.median(blocks)) if blocks else float("nan"),
            "alternating_block_ratio_interval": median_interval(blocks)}


def median_interval(x: list[float], level: float = 0.95) -> list[float] | None:
    """A distribution-free interval for the median of `x`: the order statistics k and n+1-k, k the largest
    rank with P(Binomial(n, 1/2) < k) <= (1 - level) / 2 (at least `level` coverage if the values were
    independent; blocks of one run share the machine's drift, so read it as a spread). None below 6 values."""
    from scipy.stats import binom
    n = len(x)
    k = 0
    while k + 1 <= n // 2 and binom.cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1
    if k == 0:
        return None
    v = sorted(x)
    return [float(v[k - 1]), float(v[n - k])]


def linear_scaling(r: dict, ref: dict) -> dict:
    """How run `r` compares with `ref` (the default economy) scaled linearly by patient-months: ratio 1 is
    exactly linear, above 1 slower than linear (also on CPU time, less sensitive to other load)."""
    scale = r["patient_months"] / ref["patient_months"] if ref["patient_months"] else float("nan")
    pred, pred_cpu = ref["seconds"] * scale, ref["cpu_seconds"] * scale
    out = {"reference_economy": "default", "reference_patients": ref["patients"],
           "reference_patient_months": ref["patient_months"], "reference_seconds": ref["seconds"],
           "reference_cpu_seconds": ref["cpu_seconds"], "patient_months_ratio": scale,
           "predicted_seconds": pred, "ratio": r["seconds"] / pred if pred > 0 else float("nan"),
           "cpu_ratio": r["cpu_seconds"] / pred_cpu if pred_cpu > 0 else float("nan")}
    if r.get("pair_ratios"):     # each interleaved turn's own ratio, and their median
        out["pair_ratios"] = list(r["pair_ratios"])
        out["pair_ratio_median"] = float(statistics.median(r["pair_ratios"]))
    return out


def warm_up(arrangement: str, seed: int) -> None:
    """Untimed: imports, parameter caches, numpy first-call costs, a year boundary, both compiled
    contact-window updates and the dense demand scan loaded."""
    from . import continuity, dense_draws
    from .model import ContractingModel
    continuity.warm()
    dense_draws.warm()
    m = ContractingModel(arrangement=arrangement, rng=seed, population_scale=0.01)
    for _ in range(13):
        m.step()
    del m
    gc.collect()


# --------------------------------------------------------------------------- the reference
def time_reference(patients: int, months: int, arrangement: str = "fragmented", repeats: int = 1,
                   seed: int = 1, gc_disable: bool = False) -> dict:
    """The naive one-Agent-per-patient reference (abm.reference), best of `repeats`."""
    from .reference import ReferenceModel, build_source
    source = build_source(patients, arrangement, seed)
    best_setup = best_run = best_cpu = float("inf")
    n = source.pop.n
    coc = None
    for _ in range(max(1, repeats)):
        with timed_section(gc_disable):
            t0 = time.perf_counter()
            ref = ReferenceModel(patients, arrangement, seed, source=source)
            setup = time.perf_counter() - t0
        with timed_section(gc_disable):
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(months):
                ref.step()
            run = time.perf_counter() - t0
            cpu = time.process_time() - c0
        coc = ref.continuity
        best_setup, best_run, best_cpu = min(best_setup, setup), min(best_run, run), min(best_cpu, cpu)
        ref.remove_all_agents()
        del ref
        gc.collect()
    return {"patients": n, "months": months, "setup_seconds": best_setup, "seconds": best_run, "cpu_seconds": best_cpu,
            "patient_months_per_s": n * months / best_run if best_run > 0 else float("inf"),
            "continuity_of_care": coc}


# --------------------------------------------------------------------------- scaling curves
def _subprocess_bench(patients: int, months: int, arrangement: str, repeats: int, seed: int,
                      gc_disable: bool) -> dict:
    cmd = [sys.executable, "-m", "abm.bench", "--patients", str(patients), "--months", str(months),
           "--arrangement", arrangement, "--repeats", str(repeats), "--seed", str(seed),
           "--reference-patients", "0", "--quiet"] + (["--gc-disable"] if gc_disable else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench subprocess failed for {patients} patients: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling_curve(sizes, months: int, arrangement: str, repeats: int, seed: int, gc_disable: bool,
                  say=print) -> list[dict]:
    """Run time and peak memory against population size, one fresh process per size."""
    rows = []
    for n in sizes:
        r = _subprocess_bench(int(n), months, arrangement, repeats, seed, gc_disable)
        row = {k: r[k] for k in ("patients", "months", "setup_seconds", "seconds", "cpu_seconds", "patient_months_per_s",
                                 "peak_rss_mb", "baseline_rss_mb")}
        row["us_per_patient_month"] = 1e6 / r["patient_months_per_s"]
        row["kb_per_patient"] = (r["peak_rss_mb"] - r["baseline_rss_mb"]) * 1024 / r["patients"]
        rows.append(row)
        say(f"  scaling {row['patients']:>9,} patients: setup {row['setup_seconds']:6.2f} s, "
            f"run {row['seconds']:7.2f} s (CPU {row['cpu_seconds']:7.2f} s; {row['months']} months), "
            f"{row['patient_months_per_s'] / 1e6:6.2f} M patient-months/s, "
            f"{row['us_per_patient_month']:.3f} us/patient-month, peak {row['peak_rss_mb']:7.0f} MB "
            f"({row['kb_per_patient']:.2f} KB/patient above baseline)")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        ratio = (b["seconds"] / b["patients"]) / (a["seconds"] / a["patients"])
        cpu = (b["cpu_seconds"] / b["patients"]) / (a["cpu_seconds"] / a["patients"])
        say(f"  linearity: run time per patient at {b['patients']:,} is {ratio:.2f}x (CPU {cpu:.2f}x) "
            f"that at {a['patients']:,}")
    return rows


def workers_scaling(months: int, population_scale: float, replications: int, seed: int,
                    workers=(1, 2), say=print) -> dict:
    """Wall time of the 6-arrangement x `replications` experiment on 1 and 2 local workers."""
    from .experiment import run_experiment
    config = {"name": "bench_workers", "economy": "default", "arrangements": list(ARRANGEMENTS),
              "replications": replications, "seed": seed, "months": months,
              "population_scale": population_scale}
    walls, busy, load = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="abm-bench-") as tmp:
        for w in workers:
            gc.collect()
            t0 = time.perf_counter()
            out_dir = run_experiment(dict(config), out=Path(tmp) / f"w{w}", engine="local", workers=w)
            walls[w] = time.perf_counter() - t0
            load[w] = _loadavg()
            try:  # sum of the tasks' own run times, to tell parallel overhead from machine load
                busy[w] = float(json.loads((Path(out_dir) / "manifest.json").read_text())["task_cpu_seconds"])
            except (OSError, KeyError, ValueError, TypeError):
                busy[w] = float("nan")
            say(f"  workers {w}: {len(ARRANGEMENTS) * replications} runs of {months} months at "
                f"population_scale {population_scale}: {walls[w]:.1f} s wall, tasks' own time {busy[w]:.1f} s, "
                f"parallel efficiency {busy[w] / (w * walls[w]):.2f} (load average {load[w]:.1f})")
    out = {"tasks": len(ARRANGEMENTS) * replications, "months": months, "population_scale": population_scale,
           "wall_seconds": {str(k): v for k, v in walls.items()},
           "task_seconds_sum": {str(k): v for k, v in busy.items()},
           "load_average_1min": {str(k): v for k, v in load.items()}}
    if 1 in walls and 2 in walls:
        out["speedup_2_vs_1"] = walls[1] / walls[2]
        say(f"  2 workers vs 1: {out['speedup_2_vs_1']:.2f}x (target >= 1.8x)")
    return out


# --------------------------------------------------------------------------- the benchmark
def run_bench(patients: int | None = None, months: int = 120, arrangement: str = "fragmented",
              repeats: int = 3, seed: int = 1, reference_patients: int = 10_000,
              reference_months: int = 12, reference_repeats: int = 1, gc_disable: bool = False,
              warmup: bool = True, scaling=None, scaling_months: int = 24, workers_scaling_cfg=None,
              quiet: bool = False, economy=None, linear: bool = True) -> dict:
    """Run the benchmark and return the result dict (the JSON line of `abm bench`).

    `arrangement` is a key or "all" (then the headline numbers are the slowest arrangement's).
    `reference_patients=0` skips the reference. `scaling` is a list of sizes (or None);
    `workers_scaling_cfg` a dict with months, population_scale, replications (or None). With `economy`
    and `linear`, the default economy is timed too (in turn with it, the same months and arrangements) and
    `linear_scaling` reports the run time against the default's scaled linearly by patient-months.
    """
    say = (lambda *a, **k: None) if quiet else print
    keys = list(ARRANGEMENTS) if arrangement == "all" else [arrangement]
    for k in keys:
        if k not in ARRANGEMENTS:
            from .errors import ConfigError
            raise ConfigError("unknown arrangement", field="--arrangement", value=k,
                              allowed=", ".join(ARRANGEMENTS) + ", all")
    baseline = current_rss_mb()
    if warmup:
        warm_up(keys[0], seed)
    baseline = max(baseline, current_rss_mb())
    per, lin = {}, {}
    compare = economy is not None and linear
    for k in keys:
        if compare:
            r, ref = time_interleaved(k, patients, months, repeats, seed, gc_disable, economy)
        else:
            r = time_model(k, patients, months, repeats, seed, gc_disable, economy)
        per[k] = r
        say(f"{k:<17} {r['patients']:>9,} patients x {months} months: setup {r['setup_seconds']:.2f} s, "
            f"run {r['seconds']:.2f} s (best of {repeats}; CPU {r['cpu_seconds']:.2f} s), {r['patient_months_per_s'] / 1e6:.2f} M patient-months/s, "
            f"{r['seconds_per_120_months']:.2f} s per 120 months")
        if compare:
            lin[k] = ls = linear_scaling(r, ref)
            say(f"{'':<17} default economy {ref['patients']:,} patients: run {ref['seconds']:.2f} s "
                f"(CPU {ref['cpu_seconds']:.2f} s); linear in patient-months predicts {ls['predicted_seconds']:.2f} s: "
                f"this run is {ls['ratio']:.2f}x linear (CPU {ls['cpu_ratio']:.2f}x; turn by turn "
                f"{', '.join(f'{x:.2f}' for x in ls.get('pair_ratios', []))})")
    peak = peak_rss_mb()
    worst = min(per.values(), key=lambda r: r["patient_months_per_s"])
    n = worst["patients"]
    budget = TARGET_FIXED_MB + TARGET_KB_PER_PATIENT * n / 1024
    result = {
        "patients": n, "months": months, "arrangement": arrangement, "economy": str(economy or "default"),
        "seconds": worst["seconds"], "cpu_seconds": worst["cpu_seconds"], "setup_seconds": max(r["setup_seconds"] for r in per.values()),
        "patient_months_per_s": worst["patient_months_per_s"],
        "peak_rss_mb": round(peak, 1), "baseline_rss_mb": round(baseline, 1),
        "memory_budget_mb": round(budget, 1),
        "repeats": repeats, "gc": "disabled in timed sections" if gc_disable else "enabled; collected before each timed section",
        "seconds_per_120_months": worst["seconds_per_120_months"],
    }
    say(f"peak RSS {peak:.0f} MB (process-wide; {baseline:.0f} MB after imports and warm-up); "
        f"budget 300 MB + 1 KB/patient = {budget:.0f} MB")
    for k, ls in lin.items():          # (after the peak: both economies are in memory at once)
        ls.update(time_alternating(k, patients, months, seed, economy))
        say(f"{k:<17} stepped in turn with the default economy, 12 months at a time: "
            f"{ls['alternating_cpu_ratio']:.3f}x linear on CPU time (blocks: median "
            f"{ls['alternating_block_ratio_median']:.3f}"
            + (", 95% interval {:.3f}-{:.3f})".format(*ls['alternating_block_ratio_interval'])
               if ls['alternating_block_ratio_interval'] else ")"))
    if lin:
        result["linear_scaling"] = lin[worst["arrangement"]]
    if len(per) > 1:
        result["arrangements"] = {k: {kk: v for kk, v in r.items() if kk != "arrangement"}
                                  for k, r in per.items()}
        for k, ls in lin.items():
            result["arrangements"][k]["linear_scaling"] = ls
    if reference_patients and reference_patients > 0:
        ref_months = max(1, min(reference_months, months))
        ref = time_reference(reference_patients, ref_months, keys[0], reference_repeats, seed, gc_disable)
        result["reference"] = ref
        result["speedup_vs_mesa_agents"] = worst["patient_months_per_s"] / ref["patient_months_per_s"]
        # the same ratio on CPU time, less sensitive to other load on the machine
        result["speedup_vs_mesa_agents_cpu"] = ((worst["patient_months"] / worst["cpu_seconds"])
                                                / (ref["patients"] * ref["months"] / ref["cpu_seconds"]))
        say(f"reference (one mesa.Agent per patient, shuffle_do) {ref['patients']:,} patients x {ref_months} months: "
            f"setup {ref['setup_seconds']:.2f} s, run {ref['seconds']:.2f} s, "
            f"CPU {ref['cpu_seconds']:.2f} s, {ref['patient_months_per_s'] / 1e3:.1f} k patient-months/s")
        say(f"speed-up over the Mesa-agent reference: {result['speedup_vs_mesa_agents']:.0f}x "
            f"(on CPU time: {result['speedup_vs_mesa_agents_cpu']:.0f}x)")
    result["targets"] = {
        "run_seconds_per_120_months": {"target": TARGET_SECONDS, "measured": round(worst["seconds_per_120_months"], 3),
                                       "met": worst["seconds_per_120_months"] <= TARGET_SECONDS},
        "setup_seconds": {"target": TARGET_SETUP, "measured": round(result["setup_seconds"], 3),
                          "met": result["setup_seconds"] <= TARGET_SETUP},
        "peak_rss_mb": {"target": round(budget, 1), "measured": round(peak, 1), "met": peak <= budget},
    }
    if scaling:
        say(f"scaling ({scaling_months} months, fresh process per size):")
        result["scaling"] = scaling_curve(scaling, scaling_months, keys[0], repeats, seed, gc_disable, say)
    if workers_scaling_cfg:
        say("worker scaling:")
        result["workers_scaling"] = workers_scaling(seed=seed, say=say, **workers_scaling_cfg)
    result["platform"] = {"python": platform.python_version(), "machine": platform.machine(),
                          "cpus": os.cpu_count(), "load_average_1min": _loadavg()}
    return result


# --------------------------------------------------------------------------- command line
_positive = int_arg(1)
_nonneg = int_arg(0)


def _sizes(text: str) -> list[int]:
    if text in ("", "default"):
        return list(SCALING_SIZES)
    return [_positive(x) for x in text.split(",") if x.strip()]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        print(f"{self.prog}: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="abm bench", description="Throughput, memory and speed-up over a naive Mesa reference. "
                "The last line printed is JSON.")
    p.add_argument("--patients", type=_positive, help="population size (default: the default economy, 318,492)")
    p.add_argument("--months", type=_positive, default=120, help="months per run (default 120)")
    p.add_argument("--economy", default=None, help="economy YAML (default: the built-in economy); the default "
                   "economy is then timed too, in turn, for the linear-scaling ratio")
    p.add_argument("--no-linear", action="store_true",
                   help="with --economy: do not time the default economy for the linear-scaling ratio")
    p.add_argument("--arrangement", default="fragmented", help="arrangement key or 'all' (default fragmented)")
    p.add_argument("--repeats", type=_positive, default=3, help="timed runs; the fastest is kept (default 3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reference-patients", type=_nonneg, default=10_000,
                   help="patients in the naive Mesa reference (0 = skip; default 10,000)")
    p.add_argument("--reference-months", type=_positive, default=12, help="months of the reference (default 12)")
    p.add_argument("--reference-repeats", type=_positive, default=1)
    p.add_argument("--gc-disable", action="store_true", help="switch the garbage collector off in timed sections")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--scaling", nargs="?", const="default", type=_sizes, metavar="N,N,...",
                   help="also time these sizes, each in a fresh process (default 30k,100k,318,492,1M,3.2M)")
    p.add_argument("--scaling-months", type=_positive, default=24, help="months per scaling run (default 24: two year starts)")
    p.add_argument("--workers-scaling", action="store_true",
                   help="also time the 6-arrangement x N-replicate experiment on 1 and 2 workers")
    p.add_argument("--workers-replications", type=_positive, default=20)
    p.add_argument("--workers-months", type=_positive, default=120)
    p.add_argument("--workers-population-scale", type=float, default=0.05)
    p.add_argument("--quiet", action="store_true", help="print only the JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.economy is not None:
        from .errors import ConfigError
        from .params import load_economy
        try:
            load_economy(args.economy)
        except ConfigError as exc:
            print(f"abm bench: {exc}", file=sys.stderr)
            return 2
    if args.arrangement != "all" and args.arrangement not in ARRANGEMENTS:
        print(f"abm bench: unknown arrangement {args.arrangement!r}; allowed: {', '.join(ARRANGEMENTS)}, all",
              file=sys.stderr)
        return 2
    if not 0 < args.workers_population_scale <= 1:
        print(f"abm bench: --workers-population-scale {args.workers_population_scale}; allowed: (0, 1]",
              file=sys.stderr)
        return 2
    wcfg = None
    if args.workers_scaling:
        wcfg = {"months": args.workers_months, "population_scale": args.workers_population_scale,
                "replications": args.workers_replications}
    result = run_bench(patients=args.patients, months=args.months, arrangement=args.arrangement,
                       repeats=args.repeats, seed=args.seed, reference_patients=args.reference_patients,
                       reference_months=args.reference_months, reference_repeats=args.reference_repeats,
                       gc_disable=args.gc_disable, warmup=not args.no_warmup, scaling=args.scaling,
                       scaling_months=args.scaling_months, workers_scaling_cfg=wcfg, quiet=args.quiet,
                       economy=args.economy, linear=not args.no_linear)
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
