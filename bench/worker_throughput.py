"""Worker throughput benchmark: the worker through Kafka vs the model alone vs a naive loop, in one run.

    python -m bench.worker_throughput --model registry/lmr-location [--posts 2000] [--batch-size 32]

Same model, runtime, inference batch size and posts (IDRISI ``lmr/*/test_unlabeled.jsonl``) for:

* **ceiling**: the model alone, ``Extractor.predict`` over the same micro-batches the worker forms
  (arrival order, ``--batch-size`` posts, ``--inference-batch-size`` per forward pass; no Kafka, no JSON);
* **worker**: ``lmr-worker run`` in its own process against the embedded broker; each round's posts are
  produced as one backlog, and the clock runs from the first send until the last enriched event is read back.
  Ceiling and worker alternate over ``--rounds`` chunks of the posts (ABBA order) and each side's time is
  summed, because this machine's speed drifts by more than the 10% the target allows;
* **naive**: a per-message loop (poll one post, predict it alone, produce, flush, commit) on a
  subset (``--naive-posts``), as a script without batching would do, with the worker's runtime and
  (``--naive-plain``, default on) with plain PyTorch GLiNER; the group join is excluded, and the loop
  runs in rounds interleaved with the ceiling, so worker/naive = (worker/ceiling) / (naive/ceiling);
* **latency**: posts produced at a steady rate (``--rate``, default half the worker's throughput)
  for ``--latency-seconds``; p50/p99 of (event read back - post sent) per post.

* **scale-out** (``--scale-workers N``): N worker processes in one consumer group, each with
  ``cores / N`` threads, share the input partitions; throughput and each worker's share of events;
* **text cache** (``--repeat-share S``, 0 = skip): a stream where a share S of the posts repeat an
  earlier text (retweets, copies: :mod:`bench.repeats`), through two workers, one with the text cache
  and one without (``--text-cache-bytes 0``), in interleaved rounds; posts/s of each and the hit rate;
* **Arabic mix** (``--arabic-share S``, 0 = skip): an English-only stream and a mixed one (``--arabic-posts``
  each; in the mixed one a share S of the posts, evenly spaced, are Arabic IDRISI posts from
  ``idrisi:ar/lmr/{dev,train}``, labels removed: :mod:`lmr.streams`), the same English posts in the same
  order, through one worker in interleaved rounds (ABBA); posts/s of each and mixed/English. That worker runs
  with ``--text-cache-bytes 0``: the two streams share their English posts, which a cache would read once.

Every worker and reader here fetches with ``--fetch-max-wait-ms`` (default 500, Kafka's): the embedded
broker (Tansu) answers a fetch that finds no data only when that wait expires, so each round pays up to
one wait at its start (the idle worker) and one at its end (the reader); with a fast model and rounds of a
few seconds that is 10-30% of the round. ``--fetch-max-wait-ms 100`` is what docs/worker.md gives for Tansu.

The runtime the worker runs (``--runtime auto``: what auto picked) is printed, with the ceiling's useful
GFLOP/s against the CPU's measured peak for that runtime's dtype (:mod:`bench.flops`).

Targets (issue 3): worker >= 0.9x ceiling and >= 5x naive.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import REPO, cpu_name, unlabeled_posts
from bench.flops import measure_peak, runtime_dtype, useful_flops
from bench.repeats import repeated_stream
from lmr import streams
from lmr.environment import offline_env
from lmr.errors import LmrError
from lmr.model.extractor import load_extractor
from lmr.results import RESULT_HELP, write_result
from worker.broker import EmbeddedBroker, free_port

PARTITIONS = 4
ARABIC_POOL = (*streams.ARABIC, "idrisi:ar/lmr/train")  # Arabic has no unlabeled split: dev, then train posts


def _reader(bootstrap: str, topic: str, fetch_max_wait_ms: int) -> KafkaConsumer:
    # an idle reader re-fetching every 50 ms took ~7% of a core here, CPU the worker under test then lacks
    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=200,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    return c


def _read(c: KafkaConsumer, n: int, timeout_s: float, on_record: Any = None) -> int:
    got = 0
    deadline = time.monotonic() + timeout_s
    while got < n and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=100).values():
            for r in recs:
                got += 1
                if on_record:
                    on_record(r)
    return got


def _wait_ready(port: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the worker did not become ready")


def _metric(port: int, name: str) -> str:
    """The first sample of ``name`` (a metric name, or a prefix with labels) in a worker's /metrics, or ""."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name):
                return line
    return ""


def _messages_in(port: int) -> int:
    """A worker's ``lmr_worker_messages_in_total`` from its /metrics."""
    line = _metric(port, "lmr_worker_messages_in_total")
    return int(float(line.split()[-1])) if line else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--posts", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32, help="micro-batch (posts per commit)")
    ap.add_argument("--inference-batch-size", type=int, default=16, help="posts per forward pass")
    ap.add_argument("--naive-posts", type=int, default=200, help="posts of each naive loop (0 = skip the loops)")
    ap.add_argument(
        "--naive-plain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the naive loop with plain PyTorch GLiNER (runtime torch), as a simple script would run it",
    )
    ap.add_argument("--rounds", type=int, default=8, help="interleaved ceiling/worker rounds (drift control)")
    ap.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        default=500,
        help="every worker's and bench reader's fetch wait (500: Kafka's default; the embedded broker answers an "
        "empty fetch only when it expires, which each round pays at its start and end: docs/worker.md says 100 there)",
    )
    ap.add_argument("--rate", type=float, default=0.0, help="steady input rate for latency (0 = half the worker's)")
    ap.add_argument("--latency-seconds", type=float, default=20.0, help="0 = skip the latency step")
    ap.add_argument("--scale-workers", type=int, default=0, help="also run N workers in one group (0 = skip)")
    ap.add_argument(
        "--repeat-share", type=float, default=0.0, help="share of repeated texts for the text-cache step (0 = skip)"
    )
    ap.add_argument("--repeat-posts", type=int, default=1000, help="posts of the repeated stream")
    ap.add_argument("--repeat-rounds", type=int, default=4, help="interleaved cache/no-cache rounds")
    ap.add_argument(
        "--arabic-share", type=float, default=0.0, help="share of Arabic posts of the mixed stream (0 = skip)"
    )
    ap.add_argument("--arabic-posts", type=int, default=1000, help="posts of the mixed and the English-only stream")
    ap.add_argument("--arabic-rounds", type=int, default=4, help="interleaved mixed/English-only rounds")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    return ap.parse_args(argv)


@dataclass
class Bench:
    """What every step shares: options, posts, the model alone, the broker, one producer, the results."""

    a: argparse.Namespace
    posts: list[dict[str, str]]
    ex: Any
    broker: EmbeddedBroker
    producer: KafkaProducer
    tmp: Path
    res: dict[str, Any] = field(default_factory=dict)

    def ceiling(self, chunk: list[str], extractor: Any = None) -> float:
        """Seconds for the model alone on the micro-batches the worker forms (arrival order, --batch-size posts)."""
        ex, step = extractor or self.ex, self.a.batch_size
        t = time.perf_counter()
        for b in range(0, len(chunk), step):
            ex.predict(chunk[b : b + step], batch_size=self.a.inference_batch_size)
        return time.perf_counter() - t

    def send(self, topic: str, posts: list[dict[str, str]]) -> None:
        for p in posts:
            self.producer.send(topic, key=p["id"].encode(), value=json.dumps(p).encode())
        self.producer.flush()

    def start_worker(
        self, inp: str, out: str, group: str, log: str, threads: int = 0, extra: tuple[str, ...] = ()
    ) -> tuple[subprocess.Popen[bytes], int]:
        """``lmr-worker run`` in its own process, ready (model loaded, partitions assigned); returns it and its port."""
        a, port = self.a, free_port()
        cmd = [sys.executable, "-m", "worker.cli", "run", "--bootstrap-servers", self.broker.bootstrap]
        cmd += ["--input-topic", inp, "--output-topic", out, "--dlq-topic", "bench.dlq", "--group-id", group]
        cmd += ["--model", a.model, "--runtime", a.runtime, "--batch-size", str(a.batch_size)]
        cmd += ["--inference-batch-size", str(a.inference_batch_size), "--max-wait-ms", "50"]
        cmd += ["--metrics-port", str(port), "--threads", str(threads), "--fetch-max-wait-ms", str(a.fetch_max_wait_ms)]
        cmd += list(extra)
        env = offline_env()
        with (self.tmp / log).open("ab") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _wait_ready(port)
        return proc, port


def _alternate(r: int, first: Any, second: Any) -> tuple[Any, Any]:
    """Run ``first`` and ``second`` in ABBA order over rounds; returns their results as (first, second)."""
    if r % 4 in (0, 3):
        x = first()
        return x, second()
    y = second()
    return first(), y


def step_worker_vs_ceiling(b: Bench, port: int) -> None:
    """Ceiling and worker alternate over --rounds chunks of the posts (ABBA order); each side's time is summed."""
    reader = _reader(b.broker.bootstrap, "bench.out", b.a.fetch_max_wait_ms)
    rounds = max(1, b.a.rounds)
    size = -(-len(b.posts) // rounds)
    t_ceiling = t_worker = 0.0
    got = 0
    per_round: list[float] = []
    for r in range(rounds):
        chunk = b.posts[r * size : (r + 1) * size]
        if not chunk:
            break

        def worker_round(chunk: list[dict[str, str]] = chunk) -> tuple[float, int]:
            t = time.perf_counter()
            b.send("bench.in", chunk)
            n = _read(reader, len(chunk), 600)
            return time.perf_counter() - t, n

        c, (w, n) = _alternate(r, lambda chunk=chunk: b.ceiling([p["text"] for p in chunk]), worker_round)
        t_ceiling += c
        t_worker += w
        got += n
        per_round.append(round(c / w, 3))
        print(
            f"round {r + 1}/{rounds}: {len(chunk)} posts, ceiling {len(chunk) / c:.1f} posts/s, "
            f"worker {n / w:.1f} posts/s ({n} events), worker/ceiling {c / w:.3f}",
            flush=True,
        )
    reader.close()
    flops = useful_flops(b.ex, [p["text"] for p in b.posts])
    dtype = runtime_dtype(b.ex.runtime)
    b.res |= {
        "rounds": rounds,
        "worker_vs_ceiling_per_round": per_round,
        "ceiling_posts_s": round(len(b.posts) / t_ceiling, 1),  # the rounds' chunks cover every post
        "worker_posts_s": round(got / t_worker, 1),
        "worker_events": got,
        "worker_runtime": _metric(port, "lmr_worker_runtime_info"),
        "ceiling_gflops": round(flops / t_ceiling / 1e9, 2),
        "dtype": dtype,
        "peak_gflops": round(measure_peak(dtype), 1),
    }
    print(
        f"ceiling (model alone, runtime {b.ex.runtime}): {b.res['ceiling_posts_s']} posts/s, "
        f"{b.res['ceiling_gflops']} useful GFLOP/s of a measured {dtype} peak of {b.res['peak_gflops']}; "
        f"worker through Kafka: {b.res['worker_posts_s']} posts/s ({got} events)",
        flush=True,
    )


def step_latency(b: Bench) -> None:
    """Posts at a steady rate for --latency-seconds (same worker); p50/p99 of (event read back - post sent)."""
    a = b.a
    rate = a.rate or max(1.0, b.res["worker_posts_s"] / 2)
    n_lat = int(rate * a.latency_seconds)
    sent_at: dict[str, float] = {}
    arrived: dict[str, float] = {}
    sending_done = threading.Event()
    reader = _reader(b.broker.bootstrap, "bench.out", b.a.fetch_max_wait_ms)

    def collect() -> None:
        deadline = time.monotonic() + a.latency_seconds + 120
        while time.monotonic() < deadline and not (sending_done.is_set() and len(arrived) >= n_lat):
            for recs in reader.poll(timeout_ms=20).values():
                for r in recs:
                    pid = json.loads(r.value)["id"]
                    if pid.startswith("lat-"):
                        arrived[pid] = time.perf_counter()

    th = threading.Thread(target=collect, daemon=True)
    th.start()
    t0 = time.perf_counter()
    for i in range(n_lat):
        p = {**b.posts[i % len(b.posts)], "id": f"lat-{i}"}
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent_at[p["id"]] = time.perf_counter()
        b.send("bench.in", [p])
    sending_done.set()
    th.join()
    reader.close()
    lat = sorted(arrived[k] - sent_at[k] for k in sent_at if k in arrived)
    if lat:
        b.res["latency_rate_posts_s"] = round(rate, 1)
        b.res["latency_events"] = f"{len(lat)}/{n_lat}"
        b.res["latency_p50_ms"] = round(1000 * statistics.median(lat), 1)
        b.res["latency_p99_ms"] = round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)
        print(
            f"latency at {rate:.0f} posts/s: p50 {b.res['latency_p50_ms']} ms, p99 {b.res['latency_p99_ms']} ms",
            flush=True,
        )


def step_naive(b: Bench, extractor: Any, label: str) -> tuple[float, float, int]:
    """A per-message loop (poll one, predict it alone, produce, flush, commit) in rounds interleaved with the
    ceiling on the same posts; returns (naive seconds, ceiling seconds, posts), the group join excluded."""
    a, topic = b.a, f"{label}.in"
    sub = b.posts[: a.naive_posts + 1]
    b.send(topic, sub)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=b.broker.bootstrap,
        group_id=label,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )

    def one() -> str:
        while True:
            for recs in consumer.poll(timeout_ms=200, max_records=1).values():
                for r in recs:
                    post = json.loads(r.value)
                    ms = extractor.predict([post["text"]], batch_size=1)[0]
                    post["locations"] = [m.to_dict() for m in ms]
                    b.producer.send(f"{label}.out", key=r.key, value=json.dumps(post).encode())
                    b.producer.flush()
                    consumer.commit()
                    return str(post["text"])

    one()  # joins the group (tens of seconds on Tansu): start-up, not per-message work
    t_naive = t_ceil = 0.0
    done = 0
    rounds = max(1, a.rounds)
    size = -(-a.naive_posts // rounds)
    for r in range(rounds):
        n = min(size, len(sub) - 1 - done)
        if n <= 0:
            break
        chunk = [p["text"] for p in sub[1 + done : 1 + done + n]]

        def loop(n: int = n) -> float:
            t = time.perf_counter()
            for _ in range(n):
                one()
            return time.perf_counter() - t

        tn, tc = _alternate(r, loop, lambda chunk=chunk: b.ceiling(chunk))
        t_naive += tn
        t_ceil += tc
        done += n
    consumer.close()
    return t_naive, t_ceil, done


def step_naive_loops(b: Bench) -> None:
    """The naive loop with the worker's runtime and (--naive-plain) with plain PyTorch GLiNER."""
    loops: list[tuple[str, Any, str]] = [("naive", b.ex, b.ex.runtime)]
    if b.a.naive_plain:
        loops.append(("naive_plain", load_extractor(b.a.model, runtime="torch"), "plain PyTorch GLiNER"))
    for key, extractor, what in loops:
        tn, tc, n_naive = step_naive(b, extractor, key.replace("_", ""))
        b.res[f"{key}_posts_s"] = round(n_naive / tn, 1)
        b.res[f"{key}_vs_ceiling"] = round(tc / tn, 3)
        print(
            f"naive per-message loop ({what}): {b.res[f'{key}_posts_s']} posts/s ({n_naive} posts); "
            f"ceiling alongside {n_naive / tc:.1f} posts/s",
            flush=True,
        )


def step_scale_out(b: Bench) -> None:
    """N workers in one group split the partitions."""
    n = b.a.scale_workers
    threads = max(1, (os.cpu_count() or 2) // n)
    started = [b.start_worker("scale.in", "scale.out", "scale", f"scale-{i}.log", threads) for i in range(n)]
    try:
        time.sleep(8)  # let the group settle on an assignment
        reader = _reader(b.broker.bootstrap, "scale.out", b.a.fetch_max_wait_ms)
        t = time.perf_counter()
        b.send("scale.in", b.posts)
        got = _read(reader, len(b.posts), 600)
        wall = time.perf_counter() - t
        reader.close()
        per_worker = [_messages_in(port) for _, port in started]
    finally:
        for pr, _ in started:
            pr.terminate()
        for pr, _ in started:
            pr.wait(60)
    b.res |= {
        "scale_workers": n,
        "scale_threads_per_worker": threads,
        "scale_posts_s": round(got / wall, 1),
        "scale_messages_per_worker": per_worker,
    }
    print(
        f"{n} workers x {threads} threads in one group: {b.res['scale_posts_s']} posts/s "
        f"({got} events; messages per worker {per_worker})",
        flush=True,
    )


def step_text_cache(b: Bench) -> None:
    """A stream with --repeat-share repeated texts through a worker with the text cache and one without."""
    a = b.a
    stream = repeated_stream(a.repeat_posts, a.repeat_share)
    sides = {"cache": (), "nocache": ("--text-cache-bytes", "0")}
    workers = {k: b.start_worker(f"{k}.in", f"{k}.out", k, f"{k}.log", extra=extra) for k, extra in sides.items()}
    readers = {k: _reader(b.broker.bootstrap, f"{k}.out", a.fetch_max_wait_ms) for k in sides}
    seconds = {k: 0.0 for k in sides}
    got = {k: 0 for k in sides}
    try:
        rounds = max(1, a.repeat_rounds)
        size = -(-len(stream) // rounds)
        for r in range(rounds):
            chunk = stream[r * size : (r + 1) * size]
            if not chunk:
                break

            def side(k: str, chunk: list[dict[str, str]] = chunk) -> None:
                t = time.perf_counter()
                b.send(f"{k}.in", chunk)
                got[k] += _read(readers[k], len(chunk), 600)
                seconds[k] += time.perf_counter() - t

            _alternate(r, lambda: side("cache"), lambda: side("nocache"))
        hits = _metric(workers["cache"][1], "lmr_worker_text_cache_hit_ratio")
    finally:
        for rd in readers.values():
            rd.close()
        for proc, _ in workers.values():
            proc.terminate()
            proc.wait(60)
    b.res |= {
        "repeat_share": a.repeat_share,
        "repeat_posts": len(stream),
        "cache_posts_s": round(got["cache"] / seconds["cache"], 1),
        "nocache_posts_s": round(got["nocache"] / seconds["nocache"], 1),
        "cache_hit_ratio": float(hits.split()[-1]) if hits else None,
    }
    b.res["cache_speedup"] = round(b.res["cache_posts_s"] / b.res["nocache_posts_s"], 2)
    print(
        f"{a.repeat_share:.0%} repeated texts: worker {b.res['cache_posts_s']} posts/s with the text cache "
        f"(hit ratio {b.res['cache_hit_ratio']}), {b.res['nocache_posts_s']} without: {b.res['cache_speedup']}x",
        flush=True,
    )


def mixed_streams(n: int, share: float) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The English-only stream and the mixed one, ``n`` posts each: the mixed one is the same English posts in
    the same order with, evenly spaced, a share ``share`` of Arabic posts (:func:`lmr.streams.interleave`)."""
    english = [{"id": f"en-{i}", "text": str(p["text"])} for i, p in enumerate(unlabeled_posts(n))]
    pool = streams.spread(ARABIC_POOL, streams.second_count(n, share))
    arabic = [{"id": f"ar-{i}", "text": str(p["text"])} for i, p in enumerate(pool)]
    return english, streams.interleave(english, arabic, share, n)


def step_arabic_mix(b: Bench, english: list[dict[str, str]], mixed: list[dict[str, str]]) -> None:
    """The English-only and the mixed stream through one worker (no text cache) in ABBA rounds; posts/s of each."""
    a = b.a
    proc, _ = b.start_worker("mixed.in", "mixed.out", "mixed", "mixed.log", extra=("--text-cache-bytes", "0"))
    reader = _reader(b.broker.bootstrap, "mixed.out", a.fetch_max_wait_ms)
    sides = {"english": english, "mixed": mixed}
    seconds = {k: 0.0 for k in sides}
    got = {k: 0 for k in sides}
    scripts: dict[str, int] = {}

    def count_script(r: Any) -> None:
        script = json.loads(r.value)["lmr"]["script"]
        scripts[script] = scripts.get(script, 0) + 1

    try:
        rounds = max(1, a.arabic_rounds)
        size = -(-len(mixed) // rounds)
        for r in range(rounds):

            def side(k: str, r: int = r) -> None:
                chunk = sides[k][r * size : (r + 1) * size]
                t = time.perf_counter()
                b.send("mixed.in", chunk)
                got[k] += _read(reader, len(chunk), 600, count_script if k == "mixed" else None)
                seconds[k] += time.perf_counter() - t

            _alternate(r, lambda: side("mixed"), lambda: side("english"))
    finally:
        reader.close()
        proc.terminate()
        proc.wait(60)
    b.res |= {
        "arabic_share": a.arabic_share,
        "arabic_mix_posts": len(mixed),
        "mixed_scripts": scripts,
        "english_only_posts_s": round(got["english"] / seconds["english"], 1),
        "mixed_posts_s": round(got["mixed"] / seconds["mixed"], 1),
    }
    b.res["mixed_vs_english"] = round(b.res["mixed_posts_s"] / b.res["english_only_posts_s"], 3)
    print(
        f"{a.arabic_share:.0%} Arabic posts: worker {b.res['mixed_posts_s']} posts/s on the mixed stream "
        f"(events by script {scripts}), {b.res['english_only_posts_s']} on English only: "
        f"mixed/English {b.res['mixed_vs_english']}",
        flush=True,
    )


def summarise(b: Bench) -> None:
    res, a = b.res, b.a
    if "worker_posts_s" in res:
        res["worker_vs_ceiling"] = round(res["worker_posts_s"] / res["ceiling_posts_s"], 3)
    # each ratio is measured side by side with the ceiling, so worker/naive is taken through it (drift-free)
    for key in ("naive", "naive_plain"):
        if f"{key}_vs_ceiling" in res and "worker_vs_ceiling" in res:
            res[f"worker_vs_{key}"] = round(res["worker_vs_ceiling"] / res[f"{key}_vs_ceiling"], 2)
    if a.result:
        names = {"worker_vs_ceiling": "worker_over_ceiling", "worker_vs_naive_plain": "x_plain_loop"}
        row = {"name": f"{len(b.posts)} posts", "runtime": res["runtime"]}
        row |= {new: res[old] for old, new in names.items() if old in res}
        if "cache_speedup" in res:
            row["text_cache_x"] = res["cache_speedup"]
        if "mixed_vs_english" in res:
            row["arabic_mix_over_english"] = res["mixed_vs_english"]
        write_result(a.result, area="worker", title=f"worker through Kafka, {a.model}", rows=[row])
    if a.json:
        print(json.dumps(res))
        return
    print(f"\nCPU {res['cpu']}; runtime {res['runtime']}; batch {a.batch_size}; {len(b.posts)} posts")
    if "worker_vs_ceiling" in res:
        print(f"worker/ceiling = {res['worker_vs_ceiling']} (target >= 0.9)")
    for key in ("naive", "naive_plain"):
        if f"worker_vs_{key}" in res:
            print(f"worker/{key} = {res[f'worker_vs_{key}']}x")
    if "cache_speedup" in res:
        print(f"text cache at {a.repeat_share:.0%} repeats: {res['cache_speedup']}x posts/s")
    if "mixed_vs_english" in res:
        print(f"{a.arabic_share:.0%} Arabic posts: mixed/English-only = {res['mixed_vs_english']} posts/s")


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    try:  # before any model loads: a share outside [0, 1] or too few posts stops here
        mix = mixed_streams(a.arabic_posts, a.arabic_share) if a.arabic_share > 0 else None
    except LmrError as exc:
        sys.exit(str(exc))
    posts = [{"id": str(p.get("tweet_id", i)), "text": str(p["text"])} for i, p in enumerate(unlabeled_posts(a.posts))]
    ex = load_extractor(a.model, runtime=a.runtime)
    choice = ex.runtime_choice.summary() if ex.runtime_choice is not None else ex.runtime
    print(f"CPU {cpu_name()}; runtime {ex.runtime} ({choice})", flush=True)
    ex.predict([p["text"] for p in posts[:64]], batch_size=a.inference_batch_size)  # warm-up
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_file=Path(tmp) / "broker.log") as broker:
        # Every topic exists before the producer starts: a kafka-python producer that first sends to a topic
        # created after it started spun its network thread at 100% of a core here (Tansu, measured), which
        # slowed whatever ran beside it by ~4x (it made the naive loop look far slower than it is).
        for stem in ("bench", "scale", "naive", "naiveplain", "cache", "nocache", "mixed"):
            broker.create_topic(f"{stem}.in", PARTITIONS)
            broker.create_topic(f"{stem}.out", PARTITIONS)
        broker.create_topic("bench.dlq", 1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, batch_size=65536)
        b = Bench(a, posts, ex, broker, producer, Path(tmp))
        b.res = {"cpu": cpu_name(), "posts": len(posts), "batch_size": a.batch_size, "model": a.model}
        b.res |= {"inference_batch_size": a.inference_batch_size, "runtime": ex.runtime, "runtime_choice": choice}
        b.res |= {"fetch_max_wait_ms": a.fetch_max_wait_ms}
        if a.rounds > 0:  # 0 = skip the worker-vs-ceiling and latency steps
            proc, port = b.start_worker("bench.in", "bench.out", "bench", "worker.log")
            try:
                step_worker_vs_ceiling(b, port)
                if a.latency_seconds > 0:
                    step_latency(b)
            finally:
                proc.terminate()
                proc.wait(60)
        if a.naive_posts > 0:
            step_naive_loops(b)
        if a.repeat_share > 0:
            step_text_cache(b)
        if mix is not None:
            step_arabic_mix(b, *mix)
        producer.close()
        if a.scale_workers > 1:
            step_scale_out(b)
    summarise(b)


if __name__ == "__main__":
    main()
