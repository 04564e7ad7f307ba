"""Reproduce the calibration of the default economy under `fragmented`: prints target vs model.

    .venv/bin/python experiments/calibrate.py [--months 12] [--scale 0.25] [--seed 1]
"""
import argparse

from abm.calibration import calibrate, trends

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    df = calibrate(a.months, a.scale, a.seed)
    for r in df.itertuples():
        flag = "ok " if r.ok else "OUT"
        print(f"{flag} {r.metric:32s} model {r.model:10.3f}   target {r.low:g}-{r.high:g}   ({r.source})")
    tr = trends()
    for r in tr.itertuples():
        flag = "ok " if r.ok else ("GAP" if r.known_gap else "OUT")
        print(f"{flag} {r.metric:32s} model {r.model:10.4f}   target {r.low:g}-{r.high:g}   ({r.source})"
              + (f"\n    known gap: {r.known_gap}" if r.known_gap and not r.ok else ""))
    bad = (~tr["ok"]) & (tr["known_gap"] == "")
    raise SystemExit(0 if df["ok"].all() and not bad.any() else 1)
