"""The live status page of a real worker (embedded broker, tiny model, offline geocoder) in headless Chromium.

The page is loaded from the worker's metrics server; its script fills the tables from /status.json and
inlines /map.svg. The test compares what was drawn with the worker's own status and saves a screenshot.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import drawn, render
from tests.worker_support import TopicReader, WorkerThread, post, produce, settings
from worker.app import Worker
from worker.broker import EmbeddedBroker, free_port
from worker.reload import ModelManager

pytestmark = pytest.mark.slow

TEXTS = [
    "Flooding reported in Houston, Texas tonight",
    "Earthquake shakes Ecuador, damage in Guayaquil",
    "Wildfire near Redding forces thousands to flee #CarrFire",
    "Power out across Florida after the storm",
    "Rescue teams in #Houston and Beaumont working all night",
    "Evacuations ordered along the Guadalupe River near Victoria",
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def test_status_page_draws_what_the_worker_knows(broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path) -> None:
    from geocode.memory import learn
    from geocode.results import Candidate
    from lmr.model.extractor import load_extractor

    memory = tmp_path / "places.json"
    pins = [("Victoria", Candidate("Victoria", 28.8, -97.0, "city", "city", "US")),
            ("Beaumont", Candidate("Beaumont", 30.08, -94.13, "city", "city", "US"))]  # fmt: skip
    learn(pins * 2).save(memory)  # two agreeing annotations each: both kept
    tag = uuid.uuid4().hex[:8]
    inp, out, dlq, group = f"in-{tag}", f"out-{tag}", f"dlq-{tag}", f"g-{tag}"
    for name in (inp, out, dlq):
        broker.create_topic(name, 1)
    port = free_port()
    s = settings(broker.bootstrap, tiny_model, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group,
                 metrics_port=port, threshold=0.05, geocoder="offline", geocoder_memory=str(memory))  # fmt: skip
    extractor = load_extractor(str(tiny_model))
    w = WorkerThread(Worker(s, models=ModelManager(str(tiny_model), extractor=extractor))).start()
    values = [post(i, text) for i, text in enumerate(TEXTS)]
    base = f"http://127.0.0.1:{port}"
    try:
        produce(broker.bootstrap, inp, [*values, b"{not json"])
        reader = TopicReader(broker.bootstrap, out, 1)
        assert len(reader.read_until(len(values), timeout_s=180)) == len(values)
        reader.close()
        done = w.wait_for(lambda: sum(w.worker.committed.values()) == len(values) + 1, 180)
        assert done, f"processed {w.worker.processed}, committed {w.worker.committed}, alive {w.thread.is_alive()}"
        root = render(base + "/", "status-page", size=(1300, 900), wait_ms=8000)
        status = _get(base + "/status.json")
        req = urllib.request.Request(base + "/", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 501  # read-only: no POST
    finally:
        assert w.stop(timeout_s=120) == 0
    assert root.by_id("model").text() == "tiny@v1" == status["model"]
    assert root.by_id("runtime").text() == extractor.runtime
    assert root.by_id("messages").text() == f"{len(values) + 1} / {len(values)}"
    dlq_rows = [[td.text() for td in tr.find_all("td")] for tr in root.by_id("dlq").find_all("tr")[1:]]
    assert dlq_rows == [["not_json", "1"]]
    lag_rows = [[td.text() for td in tr.find_all("td")] for tr in root.by_id("lag").find_all("tr")[1:]]
    assert lag_rows == [[f"{inp} / 0", "0"]]
    assert status["map"]["places"] > 0, "the offline geocoder should resolve some of the tiny model's mentions"
    assert drawn(root, "clusters") == status["map"]["clusters"] == int(root.by_id("n-clusters").text())
    assert int(root.by_id("n-places").text()) == status["map"]["places"]
    assert drawn(root, "countries") > 100
    rate = status["geocode"]["cache_hit_rate"]
    assert rate is not None and root.by_id("cache_hit_rate").text().startswith(f"{100 * rate:.1f}%")
    assert root.by_id("posts_per_second").text() not in ("", "-")
    g = status["geocode"]
    assert g["memory_places"] == 2 and root.by_id("memory").text() == f"{g['memory_answers']} / 2"
    assert "SASL" not in json.dumps(status) and "password" not in json.dumps(status).lower()
