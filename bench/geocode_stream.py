"""The stream prior measured: IDRISI-D in arrival order, two events interleaved, and resolution speed.

    .venv/bin/python bench/geocode_stream.py [--data IDRISI/lmd] [--splits train,dev]
        [--pair hurricane_harvey_2017,kaikoura_earthquake_2016] [--first 50]

1. every gold mention of the splits, each event's posts in ``created_at`` order
   (the prior keyed by event, as a worker per event topic), prior off vs on, with
   per-type and per-event acc@161 side by side, and IDRISI-D's MRR@1/3/5 per admin level;
2. two events interleaved post by post on ONE prior key (the worst case: a topic
   carrying two disasters), prior off vs on, over all their mentions and over the
   first ``--first`` posts of each event (does the prior lock onto an early guess?);
3. speed: mentions/s with a cold cache (fresh resolver) and a warm one (the same
   posts again), prior on.

Writes bench/results/geocode_stream.json. Figures depend on the CPU: name it with them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import zip_longest
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import need_idrisi  # noqa: E402
from geocode.evaluate import GoldPost, evaluate, read_posts  # noqa: E402
from geocode.resolver import build_resolver  # noqa: E402

_KEYS = ("n", "acc_161", "coverage", "median_km", "mean_km")


def _row(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in _KEYS}


def arrival(files: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prior in (("prior_off", False), ("prior_on", True)):
        m = evaluate(build_resolver("offline", prior=prior), files, order="arrival", mrr=True)
        out[name] = {
            **_row(m),
            "by_type": {k: _row(v) for k, v in m["by_type"].items()},
            "by_event": {k: _row(v) for k, v in m["by_event"].items()},
            "mrr": m["mrr"],
        }
        print(json.dumps({"arrival": name, **_row(m)}), flush=True)
    return out


def interleaved(files: list[Path], pair: tuple[str, str], first: int) -> dict[str, Any]:
    posts = [p for p in read_posts(files, "arrival") if p.event in pair and p.mentions]
    a = [p for p in posts if p.event == pair[0]]
    b = [p for p in posts if p.event == pair[1]]
    stream: list[GoldPost] = [p for ab in zip_longest(a, b) for p in ab if p is not None]
    early = {id(p) for p in a[:first]} | {id(p) for p in b[:first]}
    one_key = dict.fromkeys(pair, "topic")
    out: dict[str, Any] = {"pair": list(pair), "posts": len(stream)}
    for name, prior in (("prior_off", False), ("prior_on", True)):
        resolver = build_resolver("offline", prior=prior)
        details: list[dict[str, Any]] = []
        m = evaluate(resolver, [], posts=stream, stream_of=one_key, details=details)
        flags = [id(p) in early for p in stream for _ in p.mentions]
        first_rows = [d for d, f in zip(details, flags, strict=True) if f]
        per_event = {}
        for ev in pair:
            rows = [d for d in first_rows if d["event"] == ev]
            hits = sum(1 for d in rows if d["km"] is not None and d["km"] <= 161)
            per_event[ev] = {"n": len(rows), "acc_161": round(hits / len(rows), 4) if rows else None}
        out[name] = {
            **_row(m),
            "by_event": {k: _row(v) for k, v in m["by_event"].items()},
            f"first_{first}_posts": per_event,
        }
        print(json.dumps({"interleaved": name, **out[name]}), flush=True)
    return out


def speed(files: list[Path]) -> dict[str, Any]:
    posts = read_posts(files, "arrival")
    resolver = build_resolver("offline", prior=True)
    out: dict[str, Any] = {}
    for name in ("cold", "warm"):
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for p in posts:
            if p.mentions:
                resolver.resolve(p.mentions, p.text, stream=p.event)
                n += len(p.mentions)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        # CPU seconds are the figure to compare on a shared machine; wall seconds include waiting for a core.
        out[name] = {
            "mentions": n,
            "wall_s": round(secs, 2),
            "cpu_s": round(cpu, 2),
            "mentions_per_wall_s": round(n / secs, 1),
            "mentions_per_cpu_s": round(n / cpu, 1),
        }
        print(json.dumps({"speed": name, **out[name]}), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="an IDRISI-D lmd/ folder (default: IDRISI's, see lmr/datasets.py)")
    ap.add_argument("--splits", default="train,dev")
    ap.add_argument("--pair", default="hurricane_harvey_2017,kaikoura_earthquake_2016")
    ap.add_argument("--first", type=int, default=50)
    args = ap.parse_args()
    data = Path(args.data) if args.data else need_idrisi() / "lmd"
    files = sorted(f for s in args.splits.split(",") for f in data.glob(f"*/{s}.jsonl"))
    if not files:
        print(f"skip: no IDRISI-D files under {data} (obtain IDRISI from its public source)")
        return 0
    ev = tuple(args.pair.split(","))
    if len(ev) != 2:
        ap.error("--pair takes two event names, e.g. hurricane_harvey_2017,kaikoura_earthquake_2016")
    results = {
        "arrival": arrival(files),
        "interleaved": interleaved(files, (ev[0], ev[1]), args.first),
        "speed": speed(files),
    }
    out = ROOT / "bench" / "results" / "geocode_stream.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
