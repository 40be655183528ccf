"""An Arabic event replayed end to end: the replay command, the real broker, the worker with the real tiny model.

The tiny model learned English only, so what it finds in Arabic is not checked; what is checked is what the
worker owes every post whatever its language: one event per post, the original text and offsets kept byte for
byte, the post's script on the event, and the per-script counters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from tests.worker_support import TopicReader, WorkerThread, settings, topics
from worker.app import Worker
from worker.broker import EmbeddedBroker
from worker.events import load_schema
from worker.reload import ModelManager

pytestmark = pytest.mark.slow

#: A small Arabic flood event in IDRISI's Arabic shape (startIdx/endIdx), and one English post in the same stream.
EVENT = [
    ("استنفار حاليا بالكويت ورفع الحالة الى رقم 2 . #الله_يستر #سيول_الكويت", ["بالكويت", "الكويت"]),
    ("أمطار غزيرة على منطقة #الأحمدي و الفحيحيل الآن https://t.co/abc", ["الأحمدي", "الفحيحيل"]),
    ("وزارة التربية: استئناف الدراسة غداً بجميع المناطق التعليمية 🌧️🌧️", []),
    ("سيول في حفر الباطن والدفاع المدني يحذر @civil_defense", ["حفر الباطن"]),
    ("Flooding reported in Houston, Texas tonight", ["Houston", "Texas"]),
]


def _event_file(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i, (text, names) in enumerate(EVENT):
            mentions = [{"text": n, "type": "CITY", "startIdx": text.index(n), "endIdx": text.index(n) + len(n)}
                        for n in names]  # fmt: skip
            created = f"Fri Nov 09 19:4{i}:02 +0000 2018"
            f.write(json.dumps({"tweet_id": str(100 + i), "text": text, "created_at": created,
                                "location_mentions": mentions}, ensure_ascii=False) + "\n")  # fmt: skip
    return path


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


def test_an_arabic_event_replayed_through_the_worker_keeps_text_offsets_and_counts_by_script(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    from lmr.model.extractor import load_extractor
    from worker.cli import main

    inp, out, dlq, group = topics(broker, 1)
    replay = ["replay", str(_event_file(tmp_path / "kuwait.jsonl")), "--topic", inp, "--rate", "100"]
    res = CliRunner().invoke(main, [*replay, "--bootstrap-servers", broker.bootstrap])
    assert res.exit_code == 0, res.output
    s = settings(broker.bootstrap, tiny_model, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group,
                 metrics_port=0, threshold=0.05, geocoder="offline")  # fmt: skip
    models = ModelManager(str(tiny_model), extractor=load_extractor(str(tiny_model)), check_s=s.reload_check_s)
    w = WorkerThread(Worker(s, models=models)).start()
    try:
        reader = TopicReader(broker.bootstrap, out, 1)
        recs = reader.read_until(len(EVENT), timeout_s=90)
        reader.close()
    finally:
        assert w.stop() == 0
    events: list[dict[str, Any]] = [json.loads(r.value) for r in recs]
    assert [e["tweet_id"] for e in events] == [str(100 + i) for i in range(len(EVENT))]  # replayed in created_at order
    schema = load_schema()
    for e, (text, _) in zip(events, EVENT, strict=True):
        jsonschema.validate(e, schema)
        assert e["text"] == text  # the original text, not a normalised one
        assert e["lmr"]["script"] == ("latin" if text.startswith("Flooding") else "arabic")
        for loc in e["locations"]:
            assert e["text"][loc["start"] : loc["end"]] == loc["text"]
    raw = recs[0].value.decode("utf-8")
    assert EVENT[0][0] in raw, "Arabic is written as UTF-8 characters, not \\u escapes"
    metrics = w.worker.metrics.render().decode()
    assert 'lmr_worker_events_by_script_total{script="arabic"} 4.0' in metrics
    assert 'lmr_worker_events_by_script_total{script="latin"} 1.0' in metrics
    mentions = sum(len(e["locations"]) for e in events)
    by_script = [line for line in metrics.splitlines() if line.startswith("lmr_worker_mentions_by_script_total")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in by_script) == mentions
