"""The transport-free pipeline: messages -> parse -> extract -> resolve -> output/DLQ records.

The same code runs behind Kafka (:mod:`worker.app`), in file mode, and in-process::

    pipe = Pipeline(ModelManager("registry/lmr"))
    result = pipe.process([Message(b'{"id": 1, "text": "Flooding in Houston"}', "t", 0, 0)])
    result.outputs[0].value  # the enriched event (JSON bytes)

A post the model fails on is isolated (the batch is retried post by post) and
dead-lettered as ``model_error``, but only when the model still works: after any
failure the model reads its canary posts (:mod:`worker.canary`); if they pass, each failed post
is read once more (a model that recovered mid-batch is not the posts' fault) and
what fails again is dead-lettered. If the canary fails, the model, not the
input, is broken: :class:`ModelFailing` is raised and nothing of
the batch is dead-lettered (the worker keeps the batch, reports not ready,
rolls back a fresh reload, and retries).

A batch may have a ``deadline``: extraction runs first, then the posts are geocoded
in order while time is left; the mentions not resolved by then get ``geo: null``
with ``geo_skipped: "deadline"`` (:mod:`worker.resolve`), so a slow geocoder
never holds a batch past its deadline. Between posts, ``idle`` (the worker's
keepalive poll) runs at most every :data:`KEEPALIVE_S`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from geocode import placed
from lmr.deadline import Deadline
from lmr.errors import DataError, ModelError
from worker.canary import model_works
from worker.events import OutRecord, build_event, dlq_record, event_record
from worker.extract import Extracted, Extraction, ExtractorLike, ExtractStage
from worker.parse import INTERNAL_ERROR, MODEL_ERROR, Message, Post, Rejected, parse_message
from worker.reload import ModelManager
from worker.resolve import DEADLINE, Geo, GeoStage, NoGeocoder, Skipped
from worker.settings import default

log = logging.getLogger(__name__)

# quix-streams style error callback: (exc, message, logger) -> True to dead-letter and go on, False to raise.
ErrorCallback = Callable[[BaseException, Message, logging.Logger], bool]


KEEPALIVE_S = 1.0  # while geocoding a batch, the longest time between two ``idle`` calls (a post's time aside)


class ModelFailing(ModelError):
    """The model failed on posts and on a known-good canary post: the model is broken, not the input."""


class ProcessingError(RuntimeError):
    """An ``on_processing_error`` callback declined to handle a failure; the worker stops without committing."""


def dead_letter_all(exc: BaseException, message: Message, logger: logging.Logger) -> bool:
    """The default callback: every bad message goes to the DLQ."""
    return True


@dataclass
class BatchResult:
    """What one micro-batch produced."""

    messages: int = 0
    outputs: list[OutRecord] = field(default_factory=list)
    dlq: list[OutRecord] = field(default_factory=list)
    dlq_reasons: list[str] = field(default_factory=list)
    mentions: int = 0
    truncated: int = 0
    late: int = 0  # mentions left geo null because the batch deadline passed
    inference_s: float = 0.0
    model_id: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    scripts: list[tuple[str, int]] = field(default_factory=list)  # (lmr.script, mentions) of each event


@dataclass
class PipelineOptions:
    text_field: str = default("text_field")
    id_field: str = default("id_field")
    max_text_bytes: int = default("max_text_bytes")
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

    def model_works(self, extractor: ExtractorLike) -> bool:
        """Whether ``extractor`` still reads its canary posts (told apart: a broken model from bad posts)."""
        return model_works(extractor, self.extract.batch_size)

    def _retry_failed(self, extractor: ExtractorLike, posts: list[Post], extraction: Extraction) -> Extraction:
        """Once the canary passes, read each failed post once more: a model that failed for a while
        (and recovered mid-batch) is not the posts' fault; what fails again is."""
        results = list(extraction.results)
        spent = extraction.inference_s
        for i, r in enumerate(results):
            if isinstance(r, BaseException):
                again = self.extract.run(extractor, [posts[i]])
                spent += again.inference_s
                results[i] = again.results[0]
        return Extraction(results, spent)

    def process(
        self,
        messages: Sequence[Message],
        *,
        deadline: Deadline | None = None,
        idle: Callable[[], None] | None = None,
    ) -> BatchResult:
        """Records for ``messages``, outputs in input order.

        Every message ends as exactly one event or one dead letter: a failure on one message (bad
        content, the model failing on that post, an event that cannot be built) is isolated to that
        message and dead-lettered with a reason. Raises :class:`ModelFailing` when the model is broken
        and :class:`ProcessingError` when an error callback declines a failure; never for a message's content.
        Geocoding ends by ``deadline``; ``idle`` runs between posts (see the module docstring).
        """
        result = BatchResult(messages=len(messages))
        extractor = self.models.current
        result.model_id = extractor.model_id
        posts: list[Post] = []
        for m in messages:
            parsed = self._parse(m)
            if isinstance(parsed, Rejected):
                self._reject(parsed, result)
            else:
                posts.append(parsed)
        extraction = self.extract.run(extractor, posts)
        result.inference_s = extraction.inference_s
        works = not extraction.failed or self.model_works(extractor)
        if extraction.failed and works:
            extraction = self._retry_failed(extractor, posts, extraction)
        if extraction.failed and not works:
            first = next(r for r in extraction.results if isinstance(r, BaseException))
            raise ModelFailing(
                f"model {extractor.model_id} failed on {extraction.failed} of {len(posts)} posts and on a known-good "
                f"canary post ({first!r}): the model is broken, not the input",
                "the worker holds the batch (not ready, nothing committed) and retries; "
                "check the device (CUDA out of memory?) or publish a working version.",
            ) from first
        self._build(posts, extraction.results, extractor, result, deadline, idle)
        if result.late:
            log.warning(
                "the batch deadline passed while geocoding: %d mentions of this batch left geo null "
                "(geo_skipped: deadline)",
                result.late,
            )
        return result

    def _build(
        self,
        posts: list[Post],
        extracted: list[Extracted | BaseException],
        extractor: ExtractorLike,
        result: BatchResult,
        deadline: Deadline | None,
        idle: Callable[[], None] | None,
    ) -> None:
        """Geocode each extracted post by ``deadline`` and build its event (or its dead letter) into ``result``."""
        last_idle = time.monotonic()
        for post, ex in zip(posts, extracted, strict=True):
            if idle is not None and time.monotonic() - last_idle >= KEEPALIVE_S:
                idle()
                last_idle = time.monotonic()
            if not isinstance(ex, Extracted):
                err = ModelError(f"model {extractor.model_id} failed on this post: {ex}")
                err.__cause__ = ex
                self._reject(Rejected(post.message, MODEL_ERROR, str(err), err), result)
                continue
            try:
                geo = self.geo.resolve(ex.mentions, post.fields, post.text, deadline)
                ex, geo = _placed_only(ex, geo)
                event, record = self._event(post, ex, geo, extractor)
            except Exception as exc:  # a bug, not the input's fault: isolate it, keep the stream moving
                log.exception("building the event failed for %s", _where(post.message))
                self._reject(Rejected(post.message, INTERNAL_ERROR, _internal(exc), exc), result)
                continue
            result.outputs.append(record)
            result.mentions += len(ex.mentions)
            result.scripts.append((event["lmr"]["script"], len(ex.mentions)))
            result.late += sum(isinstance(g, Skipped) and g.reason == DEADLINE for g in geo)
            result.truncated += int(ex.truncated)
            if self.options.keep_events:
                result.events.append(event)

    def _parse(self, m: Message) -> Post | Rejected:
        o = self.options
        try:
            return parse_message(m, text_field=o.text_field, id_field=o.id_field, max_text_bytes=o.max_text_bytes)
        except Exception as exc:  # parse_message never raises for bad input; this is a safety net for bugs
            log.exception("parsing failed for %s", _where(m))
            return Rejected(m, INTERNAL_ERROR, _internal(exc), exc)

    def _event(self, post: Post, ex: Extracted, geo: list[Geo], extractor: Any) -> tuple[dict[str, Any], OutRecord]:
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


def _placed_only(ex: Extracted, geo: list[Geo]) -> tuple[Extracted, list[Geo]]:
    """Drop the mentions below the emit threshold that the geocoder did not place (:mod:`geocode.placed`)."""
    if ex.emit_threshold is None:
        return ex, geo
    keep = placed.keep(
        [m.score for m in ex.mentions], [g if isinstance(g, dict) else None for g in geo], ex.emit_threshold
    )
    if all(keep):
        return ex, geo
    mentions = [m for m, k in zip(ex.mentions, keep, strict=True) if k]
    return replace(ex, mentions=mentions), [g for g, k in zip(geo, keep, strict=True) if k]


def _where(m: Message) -> str:
    return f"{m.topic}/{m.partition}@{m.offset}"


def _internal(exc: BaseException) -> str:
    return f"the worker failed on this message ({type(exc).__name__}: {exc}); please report it with this dead letter"
