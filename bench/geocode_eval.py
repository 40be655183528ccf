"""Offline geocoding quality on IDRISI-D dev, with and without the per-event region hint.

    .venv/bin/python bench/geocode_eval.py [--data IDRISI/lmd] [--split dev]

Prints one JSON object per setting (acc_161 over all gold mentions, coverage,
median/mean km, n) and writes them to bench/results/geocode_eval.json. The
event -> countries map (bench/geocode_events.json) is the context an analyst
gives a stream; it is not derived from the gold annotations.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import need_idrisi  # noqa: E402
from geocode.evaluate import evaluate, load_region_map  # noqa: E402
from geocode.resolver import build_resolver  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="an IDRISI-D lmd/ folder (default: IDRISI's, see lmr/datasets.py)")
    ap.add_argument("--split", default="dev")
    args = ap.parse_args()
    data = Path(args.data) if args.data else need_idrisi() / "lmd"
    files = sorted(data.glob(f"*/{args.split}.jsonl"))
    if not files:
        print(f"skip: no IDRISI-D files under {data} (obtain IDRISI from its public source)")
        return 0
    regions = load_region_map(ROOT / "bench" / "geocode_events.json")
    results = {}
    for name, fallback, rmap in (
        ("offline", "context", None),
        ("offline+region", "context", regions),
        ("offline,no-fallback", "none", None),
        ("offline+region,no-fallback", "none", regions),
    ):
        resolver = build_resolver("offline", fallback=fallback)
        t0 = time.perf_counter()
        m = evaluate(resolver, files, region_map=rmap)
        secs = time.perf_counter() - t0
        row = {k: m[k] for k in ("n", "acc_161", "coverage", "median_km", "mean_km")}
        row["mentions_per_s"] = round(m["n"] / secs, 1)
        row["by_type_acc_161"] = {k: v["acc_161"] for k, v in m["by_type"].items()}
        results[name] = row
        print(json.dumps({"setting": name, **row}))
    out = ROOT / "bench" / "results" / "geocode_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
