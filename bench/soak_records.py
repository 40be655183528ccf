"""The records of the soak benchmark (:mod:`bench.soak`): typical posts, hostile records, worst-case texts.

Every kind is a function ``(rng, i) -> SoakRecord``; :data:`HOSTILE` holds what a production Kafka
cluster can deliver besides a well-formed post (issue 32, items 1, 2 and 5, and the poison bodies
of the first round), :data:`COSTLY` the worst-case texts of item 3. The soak sends them in a fixed
rotation so that every kind appears even in a short run.

kafka-python encodes header keys with ``str.encode("utf-8")``; :class:`RawHeaderKey` is a ``str`` whose
``encode`` returns the raw bytes it was built from, so a header key that is not UTF-8 (which Java,
librdkafka, sarama and franz-go producers can write) goes onto the wire as it is.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

CODECS = ("gzip", "snappy", "lz4", "zstd")
MIB = 1 << 20


class RawHeaderKey(str):
    """A header key that kafka-python writes byte for byte (its ``encode`` returns ``raw``)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawHeaderKey:
        obj = super().__new__(cls, raw.decode("latin-1"))
        obj.raw = raw
        return obj

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


@dataclass(frozen=True)
class SoakRecord:
    """One input record: its kind, value (None: a tombstone), key, headers and the codec of its batch."""

    kind: str
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    codec: str | None = None


Kind = Callable[[random.Random, int], SoakRecord]


@dataclass
class Texts:
    """What the generators draw texts from: typical post texts and place names (for the 1,000-name post)."""

    posts: list[str]
    places: list[str]

    def post(self, rng: random.Random, i: int, text: str | None = None) -> bytes:
        body = {"id": f"soak-{i}", "text": text if text is not None else rng.choice(self.posts)}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")


def not_utf8(rng: random.Random, n: int) -> bytes:
    """``n`` (>= 1) random bytes that are certainly not UTF-8 (a lone continuation byte first)."""
    return b"\x80" + rng.randbytes(max(0, n - 1))


def typical(texts: Texts) -> Kind:
    return lambda rng, i: SoakRecord("typical", texts.post(rng, i), f"soak-{i}".encode())


def hostile_kinds(texts: Texts) -> dict[str, Kind]:
    """Records other than a well-formed post: keys, headers, bodies and codecs the outside world can send."""
    post = texts.post

    def forged(rng: random.Random) -> list[tuple[str, bytes]]:
        names = ("lmr.error.reason", "lmr.error.message", "lmr.source.topic", "lmr.source.offset", "lmr.model")
        return [(n, rng.choice([b"\xff", b"event_too_large", b"999999", rng.randbytes(6)])) for n in names]

    kinds: dict[str, Kind] = {
        "key_bytes": lambda rng, i: SoakRecord("key_bytes", post(rng, i), rng.randbytes(rng.randint(0, 64))),
        "header_key_bytes": lambda rng, i: SoakRecord(
            "header_key_bytes",
            post(rng, i),
            headers=[(RawHeaderKey(not_utf8(rng, rng.randint(1, 12))), rng.randbytes(8)) for _ in range(2)],
        ),
        "header_value_bytes": lambda rng, i: SoakRecord(
            "header_value_bytes",
            post(rng, i),
            headers=[("trace", not_utf8(rng, 16)), ("empty", b""), ("bin", rng.randbytes(32))],
        ),
        "lmr_headers": lambda rng, i: SoakRecord("lmr_headers", post(rng, i), headers=forged(rng)),
        # a forged reason on a post whose event re-serialises over 1 MiB (1e15 -> 1000000000000000.0)
        "lmr_headers_oversized": lambda rng, i: SoakRecord(
            "lmr_headers_oversized",
            b'{"id": "soak-%d", "text": "Flooding in Houston", "x": [%s]}' % (i, b",".join([b"1e15"] * 60_000)),
            headers=[("lmr.error.reason", b"\xff")],
        ),
        "large_headers": lambda rng, i: SoakRecord(
            "large_headers", post(rng, i), headers=[(f"h{j}", b"v" * (64 << 10)) for j in range(16)]
        ),
        "large_key": lambda rng, i: SoakRecord("large_key", post(rng, i), b"k" * MIB),
        "not_json": lambda rng, i: SoakRecord(
            "not_json", rng.choice([b"{not json", b'{"text": "Houston"', not_utf8(rng, 40), b"NaN"])
        ),
        "huge_body": lambda rng, i: SoakRecord("huge_body", post(rng, i, "Flooding in Houston " * 100_000)),
        "deep_nesting": lambda rng, i: SoakRecord(
            "deep_nesting", b'{"text": "Rain in Houston", "n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        ),
        "tombstone": lambda rng, i: SoakRecord("tombstone", None, f"soak-{i}".encode()),
    }
    for codec in CODECS:
        kinds[f"codec_{codec}"] = compressed(texts, codec)
    return kinds


def compressed(texts: Texts, codec: str) -> Kind:
    """A typical post in a batch compressed with ``codec``."""

    def make(rng: random.Random, i: int) -> SoakRecord:
        return SoakRecord(f"codec_{codec}", texts.post(rng, i), f"soak-{i}".encode(), codec=codec)

    return make


def costly_texts(places: list[str]) -> dict[str, str]:
    """The worst-case texts of issue 32 item 3, each under the worker's default --max-text-bytes (100,000)."""
    links = " ".join(f"http://a.co/{j:04x}" for j in range(5_000))  # more than --max-chunks (16) windows of links
    return {
        "text_whitespace_link": "Flooding in Houston" + " " * 95_000 + "https://t.co/abc",
        "text_long_word": "Houston" * 7_000 + " flooding",  # one 49 KB word
        "text_link_windows": "Flooding in Houston " + links,
        "text_place_names": "Flooding reported in " + ", ".join(places[:1_000]),
        "text_emoji": "Flooding in Houston " + "🌊🔥🇺🇸👨‍👩‍👧 " * 2_400,
        "text_arabic_cjk": "فيضانات في القاهرة والإسكندرية " * 800 + "東京と大阪で地震が発生しました。" * 800,
    }


def costly_kinds(texts: Texts) -> dict[str, Kind]:
    """Posts whose text is costly rather than malformed."""

    def kind(name: str, text: str) -> Kind:
        return lambda rng, i: SoakRecord(name, texts.post(rng, i, text), f"soak-{i}".encode())

    return {name: kind(name, text) for name, text in costly_texts(texts.places).items()}


def all_kinds(texts: Texts) -> dict[str, Kind]:
    """Every non-typical kind, hostile records first, then costly texts (the soak's rotation order)."""
    return {**hostile_kinds(texts), **costly_kinds(texts)}
