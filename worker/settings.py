"""Worker settings: one typed object built from CLI flags and ``LMR_*`` variables.

Secrets (the SASL password, the SSL key password) come from the environment only
(``LMR_SASL_PASSWORD``, ``LMR_SSL_KEY_PASSWORD``) and never appear in ``repr``,
``redacted()`` or logs.
"""

from __future__ import annotations

import threading
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from geocode.placed import PLACED_THRESHOLD
from lmr.backoff import Backoff
from lmr.config import redact, redact_url, secret_from_env
from lmr.errors import ConfigError
from lmr.model.text_cache import DEFAULT_BYTES as TEXT_CACHE_BYTES
from lmr.posts import DEFAULT_ID_FIELD

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
SASL_PASSWORD_ENV = "LMR_SASL_PASSWORD"
SSL_KEY_PASSWORD_ENV = "LMR_SSL_KEY_PASSWORD"
#: A batch's deadline as a share of --max-poll-interval-ms: extraction runs first, geocoding gets what is left
#: of it (the rest of the batch's mentions: geo null, reason deadline); the other half covers delivery and
#: commit, which poll while they wait (docs/worker.md, "Batch deadline").
BATCH_DEADLINE_SHARE = 0.5


def parse_file_url(value: str, flag: str) -> Path:
    """``file:PATH`` -> ``PATH``: the one parser of the file source/sink/DLQ URLs."""
    scheme, sep, rest = value.partition(":")
    if scheme != "file" or not sep or not rest:
        raise ConfigError(
            f"{flag} {value!r} is not understood.", f"use {flag} file:PATH, or leave it out to use Kafka."
        )
    return Path(rest)


@dataclass(frozen=True)
class KafkaSettings:
    """Kafka client settings shared by the consumer, the producer and the admin client."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    client_id: str = "lmr-worker"
    request_timeout_ms: int = 30_000
    # consumer
    group_id: str = "lmr-worker"
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    max_poll_records: int = 500
    # how long the broker may hold a fetch that has no data yet: Kafka answers as soon as data arrives, some
    # Kafka-compatible brokers (Tansu, the embedded demo broker) only when this wait expires: lower it there
    fetch_max_wait_ms: int = 500
    # producer
    compression_type: str = "none"
    acks: str = "all"
    linger_ms: int = 5
    max_request_size: int = 1_048_576

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ConfigError("--bootstrap-servers is empty.", "pass HOST:PORT[,HOST:PORT...] of your Kafka brokers.")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"Unknown security protocol {self.security_protocol!r}.", f"use one of {', '.join(SECURITY_PROTOCOLS)}."
            )
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ConfigError(
                    f"{self.security_protocol} needs --sasl-mechanism (got {self.sasl_mechanism!r}).",
                    f"pass --sasl-mechanism {' | '.join(SASL_MECHANISMS)}.",
                )
            if not self.sasl_username:
                raise ConfigError(
                    f"{self.security_protocol} needs a user name.", "pass --sasl-username or set LMR_SASL_USERNAME."
                )
            if not self.sasl_password:
                raise ConfigError(
                    f"{self.security_protocol} needs a password and {SASL_PASSWORD_ENV} is not set.",
                    f"export {SASL_PASSWORD_ENV}=... (the password is read from the environment only, not from flags).",
                )
        elif self.sasl_mechanism:
            raise ConfigError(
                f"--sasl-mechanism {self.sasl_mechanism} is set but the security protocol is {self.security_protocol}.",
                "pass --security-protocol SASL_SSL (or SASL_PLAINTEXT on a trusted network).",
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} {value} does not exist.", f"pass an existing PEM file to {flag}.")
        if self.compression_type not in COMPRESSION_TYPES:
            raise ConfigError(
                f"Unknown compression type {self.compression_type!r}.", f"use one of {', '.join(COMPRESSION_TYPES)}."
            )
        if self.compression_type != "none":
            import kafka.codec as codec

            available = getattr(codec, f"has_{self.compression_type}")()
            if not available:
                pkg = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}.get(self.compression_type, "")
                raise ConfigError(
                    f"Compression {self.compression_type} needs a library that is not installed.",
                    f"pip install {pkg}, or use --compression-type gzip/none.",
                )
        if self.auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError(f"--auto-offset-reset must be earliest or latest, not {self.auto_offset_reset!r}.", None)
        if not 0 < self.fetch_max_wait_ms < self.request_timeout_ms:
            raise ConfigError(
                f"--fetch-max-wait-ms must be positive and below --request-timeout-ms, not {self.fetch_max_wait_ms}.",
                "use 500 (Kafka's default), or 50-100 on brokers that answer fetches only when the wait expires.",
            )
        if self.session_timeout_ms <= self.heartbeat_interval_ms:
            raise ConfigError(
                "--session-timeout-ms must exceed --heartbeat-interval-ms.",
                "use a heartbeat interval of about a third of the session timeout.",
            )
        if self.acks not in ("all", "1", "0"):
            raise ConfigError(
                f"--acks must be all, 1 or 0, not {self.acks!r}.", "use --acks all for at-least-once delivery."
            )

    def common(self) -> dict[str, Any]:
        """kafka-python keyword arguments common to every client (secrets included: never log this)."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol.startswith("SASL"):
            cfg.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        if self.security_protocol.endswith("SSL"):
            cfg.update(
                ssl_cafile=self.ssl_cafile,
                ssl_certfile=self.ssl_certfile,
                ssl_keyfile=self.ssl_keyfile,
                ssl_password=self.ssl_key_password,
                ssl_check_hostname=self.ssl_check_hostname,
            )
        return cfg

    def consumer(self) -> dict[str, Any]:
        """KafkaConsumer keyword arguments: manual commits only."""
        return {
            **self.common(),
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": self.auto_offset_reset,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "max_poll_records": self.max_poll_records,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "request_timeout_ms": max(self.request_timeout_ms, self.session_timeout_ms + 5_000),
        }

    def producer(self) -> dict[str, Any]:
        """KafkaProducer keyword arguments."""
        return {
            **self.common(),
            "acks": self.acks if self.acks == "all" else int(self.acks),
            "compression_type": None if self.compression_type == "none" else self.compression_type,
            "linger_ms": self.linger_ms,
            "max_request_size": self.max_request_size,
        }


@dataclass(frozen=True)
class WorkerSettings:
    """Everything ``lmr-worker run`` needs."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    source: str | None = None  # "file:PATH" for file mode; None = Kafka input topic
    sink: str | None = None  # "file:PATH" for file mode
    dlq: str | None = None  # "file:PATH" in file mode
    input_topic: str = "posts"
    output_topic: str = "posts.enriched"
    dlq_topic: str | None = "posts.dlq"
    model: str = ""
    runtime: str = "auto"  # lmr.model.runtimes runtimes; auto = the measured fastest for the device
    device: str = "cpu"  # cpu | cuda
    threads: int = 0  # torch / ONNX Runtime intra-op threads (0 = library default)
    geocoder: str | None = None
    geocoder_url: str | None = None
    geocoder_user_agent: str | None = None
    geocoder_cache: str | None = None
    geocoder_region: str | None = None
    geocoder_prior: bool = True  # stream prior: recent confident places break ties between namesakes
    geocoder_offline_fallback: bool = False  # answer from the offline gazetteer when a remote service fails
    geocoder_rate_file: str | None = None  # share the remote request rate between processes on one host
    geocoder_memory: str | None = None  # place memory file (lmr-geocode learn): names annotators placed
    placed_threshold: float = PLACED_THRESHOLD  # with a geocoder: spans from here to the threshold emitted if placed
    text_field: str = "text"
    id_field: str = DEFAULT_ID_FIELD
    max_text_bytes: int = 100_000
    batch_size: int = 32
    max_wait_ms: int = 200
    inference_batch_size: int = 16
    threshold: float | None = None
    chunk_words: int = 0  # 0 = the model's window (extractor.max_words)
    chunk_overlap: int = 32
    max_chunks: int = 16
    text_cache_bytes: int = TEXT_CACHE_BYTES  # bound of the text cache, 64 MiB (0 = off): lmr.model.text_cache
    reload_check_s: float = 10.0
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    metrics_allowed_hosts: tuple[str, ...] = ()  # Host names answered beyond IPs, loopback and the bind address
    shutdown_timeout_s: float = 30.0
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    flush_timeout_s: float = 10.0
    max_messages: int = 0  # stop after this many input messages (0 = run until stopped)
    idle_exit_s: float = 0.0  # stop after this long without input while partitions are assigned (0 = never)
    log_level: str = "INFO"
    log_format: str = "plain"

    def __post_init__(self) -> None:
        redact_url(self.geocoder_url)  # from now on, a password in the URL is masked in every log line
        if not self.model:
            raise ConfigError(
                "No model given.",
                "pass --model REGISTRY/NAME (follows LATEST), REGISTRY/NAME/VERSION or a GLiNER directory.",
            )
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, not {self.batch_size}.", None)
        from lmr.model.runtimes import catalog

        runtimes = catalog.names()
        if self.runtime != "auto" and self.runtime not in runtimes:
            raise ConfigError(f"Unknown --runtime {self.runtime!r}.", f"use auto or one of {', '.join(runtimes)}.")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"--device must be cpu or cuda, not {self.device!r}.", None)
        if self.max_wait_ms < 0:
            raise ConfigError(f"--max-wait-ms must be >= 0, not {self.max_wait_ms}.", None)
        if self.text_cache_bytes < 0:
            raise ConfigError(f"--text-cache-bytes must be >= 0, not {self.text_cache_bytes}.", "use 0 to turn it off.")
        if self.max_text_bytes < 1:
            raise ConfigError(f"--max-text-bytes must be positive, not {self.max_text_bytes}.", None)
        if (
            self.chunk_words < 0
            or self.chunk_overlap < 0
            or (self.chunk_words and self.chunk_overlap >= self.chunk_words)
        ):
            raise ConfigError(
                f"--chunk-overlap ({self.chunk_overlap}) must be >= 0 and below --chunk-words ({self.chunk_words}).",
                "use an overlap of about a tenth of the window.",
            )
        if not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"--metrics-port {self.metrics_port} is not a port.", "use 0 (off) or 1..65535.")
        paths = [self.source_path, self.sink_path, self.dlq_path]  # each parses its URL (ConfigError if bad)
        if (paths[0] is None) != (paths[1] is None):
            raise ConfigError(
                "--source and --sink go together.", "pass both file:IN.jsonl and file:OUT.jsonl, or neither (Kafka)."
            )
        if paths[0] is not None and not paths[0].is_file():
            raise ConfigError(f"Input file {paths[0]} does not exist.", "pass --source file:EXISTING.jsonl.")
        if self.max_chunks < 1:
            raise ConfigError(
                f"--max-chunks must be at least 1, not {self.max_chunks}.",
                "use 1 or more windows per post (the default reads 16).",
            )
        if self.kafka.acks != "all" and not paths[0]:
            raise ConfigError(
                f"--acks {self.kafka.acks} breaks at-least-once: the worker commits input offsets once its output is "
                "acknowledged, and with acks=0 nothing is acknowledged, with acks=1 only the partition leader "
                "holds the event (lost if it fails before replicating).",
                "use --acks all (the default).",
            )
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be in (0, 1), not {self.threshold}.", None)
        if not 0.0 <= self.placed_threshold <= 1.0:
            raise ConfigError(
                f"--placed-threshold must be in [0, 1], not {self.placed_threshold}.", "use 1 to turn it off."
            )

    @property
    def file_mode(self) -> bool:
        return self.source is not None

    @property
    def batch_deadline_s(self) -> float:
        """Seconds one batch may spend in the pipeline (extraction, then geocoding): see BATCH_DEADLINE_SHARE."""
        return self.kafka.max_poll_interval_ms / 1000 * BATCH_DEADLINE_SHARE

    @property
    def source_path(self) -> Path | None:
        return None if self.source is None else parse_file_url(self.source, "--source")

    @property
    def sink_path(self) -> Path | None:
        return None if self.sink is None else parse_file_url(self.sink, "--sink")

    @property
    def dlq_path(self) -> Path | None:
        return None if self.dlq is None else parse_file_url(self.dlq, "--dlq")

    def backoff(self, stop: threading.Event | None = None) -> Backoff:
        """A fresh retry policy (``--retry-backoff-s`` doubling up to ``--retry-backoff-max-s``)."""
        return Backoff(self.retry_backoff_s, self.retry_backoff_max_s, stop or threading.Event())

    def redacted(self) -> dict[str, Any]:
        """Settings safe to log: no secrets."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "kafka"}
        out["geocoder_url"] = redact_url(self.geocoder_url)
        out["kafka"] = redact({f.name: getattr(self.kafka, f.name) for f in fields(self.kafka)})
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> WorkerSettings:
        """Build from click parameters (unknown keys ignored); secrets are read from the environment here."""
        kafka_keys = {f.name for f in fields(KafkaSettings)}
        own_keys = {f.name for f in fields(cls)} - {"kafka"}
        kafka_kw = {k: v for k, v in params.items() if k in kafka_keys and v is not None}
        kafka_kw["sasl_password"] = secret_from_env(SASL_PASSWORD_ENV)
        kafka_kw["ssl_key_password"] = secret_from_env(SSL_KEY_PASSWORD_ENV)
        own = {k: v for k, v in params.items() if k in own_keys and v is not None}
        if params.get("dlq_topic") == "":
            own["dlq_topic"] = None
        return cls(kafka=KafkaSettings(**kafka_kw), **own)


def default(name: str) -> Any:
    """The default of a settings field (worker or Kafka): the one place each default is stated."""
    for cls in (WorkerSettings, KafkaSettings):
        for f in fields(cls):
            if f.name == name and f.default is not MISSING:
                return f.default
    raise KeyError(name)
