"""The transport-free pipeline: messages -> parse -> extract -> resolve -> output/DLQ records.

The same code runs behind Kafka (:mod:`worker.app`), in file mode, and in-process
for benchmarks::

    pipe = Pipeline(ModelManager("registry/lmr"))
    result = pipe.process([Message(b'{"id": 1, "text": "Flooding in Houston"}', "t", 0, 0)])
    result.outputs[0].value  # the enriched event (JSON bytes)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmr.errors import DataError, ModelError
from lmr.posts import post_id
from worker.events import OutRecord, build_event, dlq_record, event_record
from worker.extract import Extracted, ExtractStage
from worker.geocode_stage import GeoStage, NoGeocoder
from worker.models import ModelManager
from worker.parse import INTERNAL_ERROR, MODEL_ERROR, Message, Post, Rejected, parse_message

log = logging.getLogger(__name__)

# quix-streams style error callback: (exc, message, logger) -> True to dead-letter and go on, False to raise.
ErrorCallback = Callable[[BaseException, Message, logging.Logger], bool]


class ProcessingError(RuntimeError):
    """An ``on_processing_error`` callback declined to handle a failure; the worker stops without committing."""


def dead_letter_all(exc: BaseException, message: Message, logger: logging.Logger) -> bool:
    """The default callback: every bad message goes to the DLQ."""
    return True


@dataclass
class BatchResult:
    """What one micro-batch produced."""

    outputs: list[OutRecord] = field(default_factory=list)
    dlq: list[OutRecord] = field(default_factory=list)
    dlq_reasons: list[str] = field(default_factory=list)
    mentions: int = 0
    truncated: int = 0
    inference_s: float = 0.0
    model_id: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PipelineOptions:
    text_field: str = "text"
    id_field: str = "id"
    max_text_bytes: int = 100_000
    keep_events: bool = False  # keep the event dicts in BatchResult.events (tests, file mode)


class Pipeline:
    """Parse, extract, resolve and build records for a batch of messages."""

    def __init__(
        self,
        models: ModelManager,
        *,
        extract: ExtractStage | None = None,
        geo: GeoStage | None = None,
        options: PipelineOptions | None = None,
        on_processing_error: ErrorCallback | None = None,
    ) -> None:
        self.models = models
        self.extract = extract or ExtractStage()
        self.geo = geo or NoGeocoder()
        self.options = options or PipelineOptions()
        self.on_processing_error = on_processing_error or dead_letter_all

    def _reject(self, rej: Rejected, result: BatchResult) -> None:
        own = rej.reason in (MODEL_ERROR, INTERNAL_ERROR) and rej.exc is not None
        exc = rej.exc if own and rej.exc is not None else DataError(f"{rej.reason}: {rej.error}")
        if not self.on_processing_error(exc, rej.message, log):
            raise ProcessingError(
                f"message {rej.message.topic}/{rej.message.partition}@{rej.message.offset} failed "
                f"({rej.reason}: {rej.error}) and on_processing_error declined to handle it"
            ) from exc
        log.info(
            "dead-letter %s/%d@%d: %s (%s)",
            rej.message.topic,
            rej.message.partition,
            rej.message.offset,
            rej.reason,
            rej.error,
        )
        result.dlq.append(dlq_record(rej))
        result.dlq_reasons.append(rej.reason)

    def process(self, messages: Sequence[Message]) -> BatchResult:
        """Records for ``messages``, outputs in input order; raises only if an error callback says so.

        Every message ends as exactly one event or one dead letter: a failure on one message
        (bad content, the model failing on that post, an event that cannot be built) is isolated
        to that message and dead-lettered with a reason.
        """
        result = BatchResult()
        extractor = self.models.current
        result.model_id = extractor.model_id
        posts: list[Post] = []
        for m in messages:
            parsed = self._parse(m)
            if isinstance(parsed, Rejected):
                self._reject(parsed, result)
            else:
                posts.append(parsed)
        extracted = self.extract.run(extractor, posts)
        result.inference_s = self.extract.last_inference_s
        for post, ex in zip(posts, extracted, strict=True):
            if not isinstance(ex, Extracted):
                err = ModelError(f"model {extractor.model_id} failed on this post: {ex}")
                err.__cause__ = ex
                self._reject(Rejected(post.message, MODEL_ERROR, str(err), err), result)
                continue
            try:
                event, record = self._event(post, ex, extractor)
            except Exception as exc:  # a bug, not the input's fault: isolate it, keep the stream moving
                log.exception("building the event failed for %s", _where(post.message))
                self._reject(Rejected(post.message, INTERNAL_ERROR, _internal(exc), exc), result)
                continue
            result.outputs.append(record)
            result.mentions += len(ex.mentions)
            result.truncated += int(ex.truncated)
            if self.options.keep_events:
                result.events.append(event)
        return result

    def _parse(self, m: Message) -> Post | Rejected:
        o = self.options
        try:
            return parse_message(m, text_field=o.text_field, id_field=o.id_field, max_text_bytes=o.max_text_bytes)
        except Exception as exc:  # parse_message never raises for bad input; this is a safety net for bugs
            log.exception("parsing failed for %s", _where(m))
            return Rejected(m, INTERNAL_ERROR, _internal(exc), exc)

    def _event(self, post: Post, ex: Extracted, extractor: Any) -> tuple[dict[str, Any], OutRecord]:
        geo = self.geo.resolve(ex.mentions, post.fields, post.text)
        event = build_event(
            post,
            ex.mentions,
            geo,
            model_id=extractor.model_id,
            runtime=getattr(extractor, "runtime", None),
            truncated=ex.truncated,
            chunks=ex.chunks,
        )
        return event, event_record(post, event)


def _where(m: Message) -> str:
    return f"{m.topic}/{m.partition}@{m.offset}"


def _internal(exc: BaseException) -> str:
    return f"the worker failed on this message ({type(exc).__name__}: {exc}); please report it with this dead letter"


def batched(messages: Iterable[Message], size: int) -> Iterator[list[Message]]:
    """Consecutive batches of ``size`` messages."""
    batch: list[Message] = []
    for m in messages:
        batch.append(m)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_messages(pipeline: Pipeline, messages: Iterable[Message], batch_size: int = 32) -> dict[str, Any]:
    """Run the pipeline in-process over ``messages`` (no broker): counts and timings, for benchmarks."""
    t0 = time.perf_counter()
    n_in = n_out = n_dlq = mentions = 0
    inference = 0.0
    for batch in batched(messages, batch_size):
        r = pipeline.process(batch)
        n_in += len(batch)
        n_out += len(r.outputs)
        n_dlq += len(r.dlq)
        mentions += r.mentions
        inference += r.inference_s
    wall = time.perf_counter() - t0
    return {
        "messages": n_in,
        "outputs": n_out,
        "dlq": n_dlq,
        "mentions": mentions,
        "inference_s": round(inference, 4),
        "wall_s": round(wall, 4),
        "posts_per_s": round(n_in / wall, 2) if wall > 0 else 0.0,
    }


def messages_from_jsonl(lines: Iterable[bytes | str], topic: str = "file", partition: int = 0) -> Iterator[Message]:
    """Messages from JSONL lines (blank lines skipped; offsets = line index)."""
    for i, line in enumerate(lines):
        raw = line.encode("utf-8") if isinstance(line, str) else line
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        key = None
        try:
            obj = json.loads(raw)
            if isinstance(obj, dict):
                pid = post_id(obj)
                key = pid.encode() if pid is not None else None
        except (ValueError, RecursionError):  # the pipeline dead-letters it with a reason
            pass
        yield Message(raw, topic, partition, i, key)
