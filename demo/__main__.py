"""The quick-start: the whole job end to end on embedded defaults, offline (``make demo``).

1. start the embedded Kafka-compatible broker on 127.0.0.1 and create the topics;
2. make sure a model exists: ``registry/lmr-location`` if published, else a small offline demo
   model (MiniLM encoder shipped on PyPI) is trained once into ``registry/lmr-location-demo``;
3. start a worker (offline geocoder on) in this process;
4. replay a sample stream of IDRISI posts, plus three malformed messages for the dead-letter topic;
5. print one enriched event in full and a few in brief, write them all to ``runs/demo-events.jsonl``,
   and end with a summary (posts/s, mentions, DLQ by reason).

    python -m demo [--posts 400] [--registry registry] [--demo-steps 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def ensure_model(registry: Path, steps: int) -> str:
    """``registry/lmr-location`` if published, else the demo model (trained once)."""
    from lmr.model import registry as reg

    for name in ("lmr-location", "lmr-location-demo"):
        if reg.read_latest(registry / name):
            _say(f"using published model {registry / name} ({reg.read_latest(registry / name)})")
            return str(registry / name)
    from trainer.model import offline_encoder
    from trainer.settings import TrainSettings
    from trainer.train import run

    _say(
        f"no model in {registry}: training a small offline demo model ({steps} steps on the MiniLM encoder; "
        "minutes on an idle CPU, longer on a busy one; --demo-steps sets fewer)..."
    )
    s = TrainSettings.from_params(
        {
            "train": ["idrisi:lmr/train"],
            "encoder": offline_encoder(),
            "eval_fraction": 0.05,
            "max_steps": steps,
            "eval_steps": steps,
            "registry": str(registry),
            "output_dir": str(REPO / "runs"),
            "name": "lmr-location-demo",
        },
        {"max_steps", "eval_steps"},
    )
    res = run(s)
    _say(f"published {res.published} (held-out F1 {res.metrics.get('f1')}, {res.train_seconds:.0f}s of training)")
    return str(registry / "lmr-location-demo")


def sample_stream(n: int) -> list[dict[str, Any]]:
    """``n`` unlabeled IDRISI posts spread over the events, in their original order per event."""
    from lmr.readers import expand_paths

    files = expand_paths(["idrisi:lmr/test_unlabeled"])
    per = max(1, n // max(1, len(files)))
    posts: list[dict[str, Any]] = []
    for f in files:
        lines = [ln for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()][:per]
        posts.extend(json.loads(ln) for ln in lines)
    return posts[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=400)
    ap.add_argument("--registry", default=str(REPO / "registry"))
    ap.add_argument("--demo-steps", type=int, default=400, help="training steps of the demo model, if one is needed")
    ap.add_argument("--no-geocoder", action="store_true")
    a = ap.parse_args(argv)
    from lmr.datasets import idrisi_dir
    from lmr.environment import set_defaults
    from lmr.errors import LmrError

    try:  # before the offline defaults below: finds IDRISI, or downloads it unless LMR_OFFLINE/HF_HUB_OFFLINE say no
        _say(f"IDRISI in {idrisi_dir()}")
    except LmrError as exc:
        print(f"The demo trains on and replays IDRISI posts. {exc}", file=sys.stderr)
        return 2
    set_defaults(offline=True)

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from lmr import logs
    from worker.app import Worker
    from worker.broker import EmbeddedBroker
    from worker.replay import read_records, replay
    from worker.settings import WorkerSettings

    logs.setup("WARNING")
    t_start = time.perf_counter()
    model = ensure_model(Path(a.registry), a.demo_steps)
    partitions = 4
    with EmbeddedBroker() as broker:
        for topic, parts in (("posts", partitions), ("posts.enriched", partitions), ("posts.dlq", 1)):
            broker.create_topic(topic, parts)
        _say(f"embedded broker (Tansu) on {broker.bootstrap}; topics posts, posts.enriched, posts.dlq")

        posts = sample_stream(a.posts)
        sample = REPO / "runs" / "demo-stream.jsonl"
        sample.parent.mkdir(parents=True, exist_ok=True)
        sample.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
        bad = [b"{not json", json.dumps({"tweet_id": "x1", "text": "   "}).encode(), b'{"text": "caf\xe9"}']
        total = len(posts) + len(bad)

        params: dict[str, Any] = {
            "bootstrap_servers": broker.bootstrap,
            "model": model,
            "group_id": "lmr-demo",
            "batch_size": 32,
            "max_wait_ms": 200,
            "max_messages": total,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        }
        if not a.no_geocoder:
            params["geocoder"] = "offline"
        worker = Worker(WorkerSettings.from_params(params))
        code: list[int] = []
        th = threading.Thread(target=lambda: code.append(worker.run()), daemon=True)
        th.start()

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        sent = replay(producer, "posts", read_records([str(sample)], id_field="tweet_id"))
        for b in bad:
            producer.send("posts", value=b)
        producer.flush()
        producer.close()
        _say(f"replayed {sent['sent']} archived posts + {len(bad)} malformed messages into 'posts'")

        reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
        tps = [TopicPartition("posts.enriched", p) for p in range(partitions)] + [TopicPartition("posts.dlq", 0)]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        events: list[dict[str, Any]] = []
        dlq: Counter[str] = Counter()
        t0 = time.perf_counter()
        deadline = time.monotonic() + 600
        while len(events) + sum(dlq.values()) < total and time.monotonic() < deadline:
            for tp, recs in reader.poll(timeout_ms=500).items():
                for r in recs:
                    if tp.topic == "posts.dlq":
                        hdr = {k: v.decode() for k, v in (r.headers or [])}
                        dlq[hdr.get("lmr.error.reason", "?")] += 1
                    else:
                        events.append(json.loads(r.value))
        wall = time.perf_counter() - t0
        reader.close()
        th.join(60)

    located = [e for e in events if e.get("locations")]
    mentions = sum(len(e["locations"]) for e in events)
    geo = sum(1 for e in events for loc in e["locations"] if loc.get("geo"))
    saved = REPO / "runs" / "demo-events.jsonl"
    saved.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    if located:
        print("\none enriched event, in full:")
        print(json.dumps(located[0], ensure_ascii=False, indent=2))
    print()
    for e in located[:5]:
        print(f"  {e['text'][:110]!r}")
        for loc in e["locations"]:
            g = loc.get("geo") or {}
            where = (
                f"{g.get('lat', 0):.3f},{g.get('lon', 0):.3f} {g.get('display_name', '')}"
                if g.get("lat") is not None
                else "-"
            )
            print(f"      {loc['text']!r:<24} [{loc['start']}:{loc['end']}] score {loc['score']:.2f}  -> {where}")
    print()
    _say(f"model {events[0]['lmr']['model'] if events else model}; every event in {saved}")
    _say(
        f"{len(events)} enriched events, {len(located)} with locations, {mentions} mentions "
        f"({geo} resolved to coordinates), DLQ {sum(dlq.values())} {dict(dlq)}"
    )
    _say(
        f"{len(events) / wall:.1f} posts/s end to end (replay -> worker -> output topic); "
        f"total demo {time.perf_counter() - t_start:.0f}s"
    )
    ok = len(events) + sum(dlq.values()) == total and bool(code) and code[0] == 0
    _say("OK: every message reached the output or the dead-letter topic" if ok else "INCOMPLETE: see the log above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
