"""Soak benchmark: two workers, one consumer group, the embedded broker, hostile traffic and kill -9, for minutes.

    python -m bench.soak --model REGISTRY/NAME [--minutes 20] [--rate 10] [--kill-every-s 240] [--json soak.json]

The embedded broker (Tansu) and two ``lmr-worker run`` processes in one group (``--geocoder offline``) read
``--partitions`` input partitions. Posts are produced at a steady ``--rate`` for ``--minutes``; a share
``--hostile-share`` of them (1%) are hostile records or worst-case texts (:mod:`bench.soak_records`), in a
fixed rotation of kinds so that each appears. Every ``--kill-every-s`` the second worker is killed with
``kill -9`` and started again (the first runs the whole soak: its memory at start and end is the growth);
any other exit is recorded and the worker restarted, as a supervisor would. When the traffic ends the soak
waits (``--drain-timeout-s``) until every input offset is accounted for.

Reported (markdown; ``--json PATH`` also writes the figures): records in, events out, dead letters,
**lost** (input offsets with neither an event nor a dead letter naming them: must be 0), outputs naming no
input (must be 0), the duplicate share, the longest time any partition with input waiting made no
progress (committed offset), how long progress took to resume after each kill, every unexpected worker
exit, each worker's RSS at start and end (and peak), and, per kind, what became of its records. The CPU
model and flags and the command head the report. Exit status 1 when anything was lost or unattributed.

Typical posts are IDRISI's unlabeled posts where IDRISI is found (never downloaded), else a few built-in
ones. ``--skip-kinds`` leaves kinds out (a comma-separated list), e.g. while a fix for one is pending.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import cpu_name, unlabeled_posts
from bench.soak_ledger import Ledger, Progress, sample_forever
from bench.soak_records import CODECS, MIB, SoakRecord, Texts, all_kinds, typical
from bench.soak_workers import WorkerSlot, metric
from lmr.datasets import find_idrisi
from lmr.results import RESULT_HELP, write_result
from worker.broker import EmbeddedBroker

TOPICS = ("soak.in", "soak.out", "soak.dlq")
GROUP = "soak"
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
BUILTIN_POSTS = (
    "Flooding reported in Houston, Texas tonight",
    "Evacuations ordered along the Guadalupe River near Victoria",
    "Stay safe everyone, thinking of you all",
    "Wildfire near Redding forces thousands to flee #CarrFire",
    "Earthquake shakes Ecuador, damage in Guayaquil",
    "Rescue teams in #Houston and Beaumont working all night https://t.co/x1",
    "Power out across Florida after the storm",
    "RT @news: Shelters open in Port Arthur and Orange County",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="REGISTRY/NAME or a model directory")
    ap.add_argument("--minutes", type=float, default=20.0, help="minutes of traffic")
    ap.add_argument("--rate", type=float, default=10.0, help="input records per second (steady)")
    ap.add_argument("--hostile-share", type=float, default=0.01, help="share of hostile records and costly texts")
    ap.add_argument("--kill-every-s", type=float, default=240.0, help="kill -9 worker b this often (0 = never)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="inference threads per worker")
    ap.add_argument("--geocoder", default="offline", help="--geocoder of the workers ('' = off)")
    ap.add_argument("--worker-args", default="", help="more `lmr-worker run` flags, as one shell-quoted string")
    ap.add_argument("--skip-kinds", default="", help="comma-separated kinds not to send")
    ap.add_argument("--drain-timeout-s", type=float, default=300.0, help="longest wait for the last outputs")
    ap.add_argument("--seed", type=int, default=32)
    ap.add_argument("--json", dest="json_path", default=None, help="also write the figures here as JSON")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    ap.add_argument("--log-dir", default=None, help="keep the broker's and workers' logs here (default: temporary)")
    a = ap.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    return a


def cpu_flags() -> list[str]:
    """The SIMD and matrix flags of this CPU (from /proc/cpuinfo) that inference runtimes use."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in SIMD if f in have]
    except OSError:
        pass
    return []


def typical_texts() -> tuple[list[str], str]:
    """Texts of typical posts and where they come from."""
    if find_idrisi() is not None:
        texts = [str(p["text"]) for p in unlabeled_posts() if str(p.get("text", "")).strip()]
        if texts:
            return texts, f"IDRISI unlabeled posts ({len(texts)})"
    return list(BUILTIN_POSTS), f"{len(BUILTIN_POSTS)} built-in posts (IDRISI not found)"


def place_names(n: int = 1_000) -> list[str]:
    """The ``n`` most populous distinct place names of the offline gazetteer (built first if needed)."""
    from geocode.gazetteer import open_gazetteer

    path = open_gazetteer().path
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT name FROM places GROUP BY name ORDER BY MAX(pop) DESC LIMIT ?", (n,)).fetchall()
    return [str(r[0]) for r in rows]


def codec_notes(kinds: dict[str, Any]) -> list[str]:
    """Drop codec kinds whose compression package is missing here; one note per codec dropped."""
    from kafka import codec

    have = {"gzip": codec.has_gzip(), "snappy": codec.has_snappy(), "lz4": codec.has_lz4(), "zstd": codec.has_zstd()}
    notes = []
    for c in CODECS:
        if not have[c]:
            kinds.pop(f"codec_{c}", None)
            notes.append(f"codec_{c} skipped: kafka-python finds no {c} package here (pip install 'lmr[worker]')")
    return notes


@dataclass
class Soak:
    """One soak run: options, broker, books, workers, producers and what was noted on the way."""

    a: argparse.Namespace
    broker: EmbeddedBroker
    logs: Path
    ledger: Ledger = field(default_factory=lambda: Ledger(TOPICS[0]))
    progress: Progress = field(init=False)
    slots: list[WorkerSlot] = field(default_factory=list)
    producers: dict[str | None, KafkaProducer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    t0: float = 0.0

    def __post_init__(self) -> None:
        self.progress = Progress(self.ledger)

    def worker_args(self) -> list[str]:
        a = self.a
        args = ["--bootstrap-servers", self.broker.bootstrap, "--input-topic", TOPICS[0], "--output-topic"]
        args += [TOPICS[1], "--dlq-topic", TOPICS[2], "--group-id", GROUP, "--model", a.model]
        args += ["--runtime", a.runtime, "--threads", str(a.threads), "--fetch-max-wait-ms", "100"]
        if a.geocoder:
            args += ["--geocoder", a.geocoder]
        return args + shlex.split(a.worker_args)

    def producer(self, codec: str | None) -> KafkaProducer:
        if codec not in self.producers:
            self.producers[codec] = KafkaProducer(
                bootstrap_servers=self.broker.bootstrap,
                acks="all",
                linger_ms=5,
                compression_type=codec,
                max_request_size=8 * MIB,
            )
        return self.producers[codec]

    def send(self, rec: SoakRecord) -> None:
        fut = self.producer(rec.codec).send(TOPICS[0], value=rec.value, key=rec.key, headers=rec.headers)
        fut.add_callback(lambda md: self.ledger.on_sent(rec.kind, md.partition, md.offset))
        fut.add_errback(lambda _exc: self.ledger.on_send_failed(rec.kind))

    def committed(self, consumer: KafkaConsumer) -> dict[int, int]:
        tps = [TopicPartition(TOPICS[0], p) for p in range(self.a.partitions)]
        return {tp.partition: consumer.committed(tp) or 0 for tp in tps}

    def read_outputs(self) -> None:
        """Read the output and dead-letter topics from the beginning into the ledger until stopped."""
        c = KafkaConsumer(
            bootstrap_servers=self.broker.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=16 * MIB,
            fetch_max_bytes=64 * MIB,
        )
        tps = [TopicPartition(TOPICS[1], p) for p in range(self.a.partitions)] + [TopicPartition(TOPICS[2], 0)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        try:
            while not self.stop.is_set():
                for tp, recs in c.poll(timeout_ms=300).items():
                    for r in recs:
                        if tp.topic == TOPICS[1]:
                            self.ledger.on_event(r.value)
                        else:
                            self.ledger.on_dead_letter(r.headers)
        finally:
            c.close()

    def supervise(self) -> None:
        now = time.monotonic()
        for s in self.slots:
            s.supervise(now, self.t0)

    def kill(self) -> None:
        victim = self.slots[-1]
        self.progress.on_kill(time.monotonic(), victim.name, self.t0)
        victim.kill()
        print(f"{time.monotonic() - self.t0:7.1f}s kill -9 worker {victim.name}; restarted", flush=True)


def traffic(s: Soak, kinds: dict[str, Any], texts: Texts) -> dict[str, int]:
    """Records at a steady rate for --minutes (every ``1/hostile-share``-th from the rotation of ``kinds``),
    killing a worker every --kill-every-s; returns how many of each kind were sent."""
    a = s.a
    rng = random.Random(a.seed)
    every = max(1, round(1 / a.hostile_share)) if a.hostile_share > 0 else 0
    names, plain, sent = list(kinds), typical(texts), {"typical": 0}
    n = int(a.minutes * 60 * a.rate)
    next_kill = a.kill_every_s if a.kill_every_s > 0 else float("inf")
    next_check = 0.0
    for i in range(n):
        at = i / a.rate
        while (now := time.monotonic() - s.t0) < at:
            time.sleep(min(0.2, at - now))
        if now >= next_check:
            s.supervise()
            next_check = now + 1.0
        if now >= next_kill:
            s.kill()
            next_kill += a.kill_every_s
        hostile = bool(every and names) and i % every == every // 2
        kind = names[(i // every) % len(names)] if hostile else "typical"
        rec = kinds[kind](rng, i) if hostile else plain(rng, i)
        s.send(rec)
        sent[kind] = sent.get(kind, 0) + 1
        if i % max(1, int(a.rate * 30)) == 0:
            print(f"{now:7.1f}s sent {i} records, {len(s.ledger.missing())} not yet accounted for", flush=True)
    for p in s.producers.values():
        p.flush()
    return sent


def drain(s: Soak) -> float:
    """Wait until every input offset is accounted for (or --drain-timeout-s); the seconds waited."""
    t = time.monotonic()
    while time.monotonic() - t < s.a.drain_timeout_s and s.ledger.missing():
        s.supervise()
        time.sleep(0.5)
    time.sleep(2.0)  # late duplicates of the last batches
    return time.monotonic() - t


def start_workers(s: Soak) -> None:
    for name in ("a", "b"):
        s.slots.append(WorkerSlot(name, s.worker_args(), s.logs / f"worker-{name}.log"))
    for slot in s.slots:
        slot.start()
    for slot in s.slots:
        slot.wait_ready()
        slot.rss_start = slot.rss()
    rss = ", ".join(f"{w.name} {w.rss_start.get('VmRSS')} MiB" for w in s.slots)
    print(f"workers ready (RSS {rss})", flush=True)


def run_soak(a: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """The whole soak; returns the figures."""
    texts_list, origin = typical_texts()
    texts = Texts(texts_list, place_names())  # builds the gazetteer before the workers open it
    kinds = all_kinds(texts)
    skip = {k for k in a.skip_kinds.split(",") if k}
    unknown = skip - set(kinds)
    if unknown:
        raise SystemExit(f"--skip-kinds names unknown kinds {sorted(unknown)}; known: {', '.join(kinds)}")
    with EmbeddedBroker(log_file=logs / "broker.log") as broker:
        broker.create_topic(TOPICS[0], a.partitions)
        broker.create_topic(TOPICS[1], a.partitions)
        broker.create_topic(TOPICS[2], 1)
        s = Soak(a, broker, logs)
        s.notes = codec_notes(kinds) + [f"skipped by --skip-kinds: {k}" for k in sorted(skip)]
        for k in skip:
            kinds.pop(k, None)
        for codec in [None, *(c for c in CODECS if f"codec_{c}" in kinds)]:
            s.producer(codec)  # every producer exists before the first send (see bench.worker_throughput)
        start_workers(s)
        runtime = metric(s.slots[0].port, "lmr_worker_runtime_info")
        watcher = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=GROUP, enable_auto_commit=False)
        sampler = (s.progress, lambda: s.committed(watcher), s.stop)
        threads = [
            threading.Thread(target=s.read_outputs, daemon=True),
            threading.Thread(target=sample_forever, args=sampler, daemon=True),
        ]
        for t in threads:
            t.start()
        s.t0 = time.monotonic()
        try:
            sent = traffic(s, kinds, texts)
            traffic_s = time.monotonic() - s.t0
            for slot in s.slots:
                slot.rss_end = slot.rss()
            drained = drain(s)
        finally:
            s.stop.set()
            for t in threads:
                t.join(10)
            watcher.close()
            codes = {slot.name: slot.stop() for slot in s.slots}
            for p in s.producers.values():
                p.close()
    res: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.soak", *a.argv]),
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "model": a.model,
        "runtime": m.group(1) if (m := re.search(r'runtime="([^"]*)"', runtime)) else "",
        "typical_posts": origin,
        "minutes": a.minutes,
        "rate": a.rate,
        "hostile_share": a.hostile_share,
        "partitions": a.partitions,
        "geocoder": a.geocoder or "off",
        "traffic_s": round(traffic_s, 1),
        "drain_s": round(drained, 1),
        "sent_by_kind": sent,
        "notes": s.notes,
        **s.ledger.summary(),
        **s.progress.summary(),
        "workers": {slot.name: {**slot.summary(), "final_exit_code": codes[slot.name]} for slot in s.slots},
        "by_kind": s.ledger.by_kind(),
    }
    res["unexpected_exits"] = sum(len(w["unexpected_exits"]) for w in res["workers"].values())
    res["missing_sample"] = [list(p) for p in s.ledger.missing()[:20]]
    return res


def result_row(res: dict[str, Any]) -> dict[str, Any]:
    """The soak's figures as one row of a result file (lmr.results)."""
    first = next(iter(res["workers"].values()))  # worker a: never killed, so its RSS is the growth
    return {
        "name": f"{res['traffic_s']} s at {res['rate']}/s, {res['hostile_share']:.1%} hostile, "
        f"{len(res['kills'])} kill -9",
        "records_in": res["records_in"],
        "events_out": res["events_out"],
        "dead_lettered": res["dead_lettered"],
        "lost": res["lost"],
        "duplicate_share": res["duplicate_share"],
        "longest_stall_s": res["longest_stall_s"],
        "unexpected_exits": res["unexpected_exits"],
        "rss_start_mb": first["rss_start_mb"],
        "rss_end_mb": first["rss_end_mb"],
    }


def markdown(res: dict[str, Any]) -> str:
    """The report: the setting, then one table of figures and one row per kind."""
    lines = [
        f"CPU {res['cpu']} (flags: {' '.join(res['cpu_flags']) or 'none of ' + ', '.join(SIMD)}); "
        f"model {res['model']}, runtime {res['runtime'] or '?'}; geocoder {res['geocoder']}; typical posts: "
        f"{res['typical_posts']}",
        f"command: `{res['command']}`",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| traffic | {res['traffic_s']} s at {res['rate']} records/s, {res['hostile_share']:.1%} hostile, "
        f"{res['partitions']} partitions |",
        f"| records in (acknowledged by the broker) | {res['records_in']} ({res['send_failed']} sends failed) |",
        f"| events out | {res['events_out']} |",
        f"| dead-lettered | {res['dead_lettered']} |",
        f"| **lost** (neither event nor dead letter) | **{res['lost']}** |",
        f"| outputs naming no input | {sum(res['unattributed'].values())} |",
        f"| duplicate share | {res['duplicate_share']:.2%} ({res['duplicates']} records) |",
        f"| longest time a partition made no progress | {res['longest_stall_s']} s "
        f"(partition {res['longest_stall_partition']}) |",
        "| kill -9 (at s: progress resumed after s) | "
        + (", ".join(f"{k['at_s']}: {k['resumed_s']}" for k in res["kills"]) or "none")
        + " |",
        f"| unexpected worker exits | {res['unexpected_exits']} |",
        f"| drain after the traffic | {res['drain_s']} s |",
    ]
    for name, w in res["workers"].items():
        lines.append(
            f"| worker {name}: RSS at start, end (peak) | {w['rss_start_mb']} MiB, {w['rss_end_mb']} MiB "
            f"({w['rss_peak_mb']}); {w['starts']} starts, {w['kills']} kills |"
        )
    lines += ["", "| kind | sent | events | dead letters | lost |", "| --- | ---: | ---: | --- | ---: |"]
    for kind, row in res["by_kind"].items():
        dl = ", ".join(f"{r} {n}" for r, n in sorted(row["dead_letters"].items())) or "-"
        lines.append(f"| {kind} | {row['sent']} | {row['events']} | {dl} | {row['lost']} |")
    lines += [f"- {n}" for n in res["notes"]]
    for name, w in res["workers"].items():
        for e in w["unexpected_exits"]:
            last = next((x for x in reversed(e["log_tail"].splitlines()) if x.strip()), "")
            lines.append(f"- worker {name} exited with {e['code']} at {e['at_s']} s: `{last[:300]}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lmr-soak-") as tmp:
        logs = Path(a.log_dir or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        res = run_soak(a, logs)
    print(markdown(res))
    if a.json_path:
        Path(a.json_path).write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    if a.result:
        write_result(a.result, area="soak", title=f"soak: model {res['model']}", rows=[result_row(res)])
    return 1 if res["lost"] or res["unattributed"] else 0


if __name__ == "__main__":
    sys.exit(main())
