"""``lmr-worker``: the streaming geoparsing worker, its embedded broker, replay and evaluation."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

import click

from geocode.endtoend_options import km_option, report_option
from lmr import logs
from lmr.clihelp import SectionedCommand
from lmr.config import config_option, fail, log_options, option
from lmr.errors import LmrError
from lmr.model.runtimes import catalog
from worker import help_sections as hs
from worker.settings import (
    COMPRESSION_TYPES,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    KafkaSettings,
    WorkerSettings,
    default,
)

log = logging.getLogger("worker.cli")


def _d(name: str) -> Any:
    """The default of a settings field, so --help shows the same defaults the code uses."""
    return default(name)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@log_options
def main(log_level: str, log_format: str) -> None:
    """Find and resolve location mentions in a stream of posts (Kafka in, Kafka out).

    \b
    Example (local trial: embedded broker, a published model, a replayed stream):
      lmr-worker broker --port 9092 --topic posts:4 --topic posts.enriched:4 --topic posts.dlq:1 &
      lmr-worker run --bootstrap-servers 127.0.0.1:9092 --model registry/lmr &
      lmr-worker replay idrisi:lmr/test_unlabeled --bootstrap-servers 127.0.0.1:9092 --topic posts --rate 200
    """
    logs.setup(log_level, log_format)


def kafka_options(f: Any) -> Any:
    """Kafka client flags shared by run and replay."""
    opts = [
        option(
            "--bootstrap-servers",
            default=_d("bootstrap_servers"),
            show_default=True,
            help="HOST:PORT[,HOST:PORT...] of the Kafka brokers.",
        ),
        option(
            "--security-protocol",
            type=click.Choice(SECURITY_PROTOCOLS),
            default=_d("security_protocol"),
            show_default=True,
        ),
        option(
            "--sasl-mechanism",
            type=click.Choice(SASL_MECHANISMS),
            default=None,
            help="SASL mechanism (password from LMR_SASL_PASSWORD only).",
        ),
        option("--sasl-username", default=None, help="SASL user name."),
        option("--ssl-cafile", default=None, help="CA bundle (PEM) to verify the brokers."),
        option("--ssl-certfile", default=None, help="Client certificate (PEM) for mutual TLS."),
        option("--ssl-keyfile", default=None, help="Client key (PEM); its password from LMR_SSL_KEY_PASSWORD."),
        option("--ssl-check-hostname/--no-ssl-check-hostname", default=True, show_default=True),
        option("--client-id", default=_d("client_id"), show_default=True),
        option("--request-timeout-ms", type=int, default=_d("request_timeout_ms"), show_default=True),
        option(
            "--compression-type",
            type=click.Choice(COMPRESSION_TYPES),
            default=_d("compression_type"),
            show_default=True,
        ),
        option(
            "--acks",
            type=click.Choice(["all", "1", "0"]),
            default=_d("acks"),
            show_default=True,
            help="Producer acks; lmr-worker run needs all (at-least-once) and refuses 1 and 0.",
        ),
        option("--linger-ms", type=int, default=_d("linger_ms"), show_default=True),
        option("--max-request-size", type=int, default=_d("max_request_size"), show_default=True),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@main.command("run", cls=SectionedCommand, sections=hs.RUN_SECTIONS, option_help=hs.OPTION_HELP)
@config_option
@kafka_options
@option("--input-topic", default=_d("input_topic"), show_default=True)
@option("--output-topic", default=_d("output_topic"), show_default=True)
@option(
    "--dlq-topic",
    default=_d("dlq_topic"),
    show_default=True,
    help="Dead-letter topic ('' = drop bad input with a log line).",
)
@option(
    "--group-id",
    default=_d("group_id"),
    show_default=True,
    help="Consumer group; workers with the same id split the partitions.",
)
@option(
    "--auto-offset-reset", type=click.Choice(["earliest", "latest"]), default=_d("auto_offset_reset"), show_default=True
)
@option("--session-timeout-ms", type=int, default=_d("session_timeout_ms"), show_default=True)
@option("--heartbeat-interval-ms", type=int, default=_d("heartbeat_interval_ms"), show_default=True)
@option("--max-poll-interval-ms", type=int, default=_d("max_poll_interval_ms"), show_default=True)
@option("--max-poll-records", type=int, default=_d("max_poll_records"), show_default=True)
@option(
    "--fetch-max-wait-ms",
    type=int,
    default=_d("fetch_max_wait_ms"),
    show_default=True,
    help="Longest a fetch waits for data at the broker (lower it on brokers that answer only when it expires).",
)
@option(
    "--create-topics",
    type=int,
    default=0,
    show_default=True,
    help="Create missing input/output/DLQ topics with N partitions (0 = no).",
)
@option("--source", default=None, help="file:IN.jsonl to read posts from a file instead of Kafka.")
@option("--sink", default=None, help="file:OUT.jsonl to write events to a file (with --source).")
@option("--dlq", default=None, help="file:DLQ.jsonl for dead letters in file mode.")
@option(
    "--model",
    default=None,
    help="REGISTRY/NAME (follows LATEST, hot reload), REGISTRY/NAME/VERSION, a GLiNER directory, or hf:ORG/NAME.",
)
@option(
    "--geocoder",
    default=None,
    help="Resolve mentions with this geocode backend (e.g. offline, nominatim); default: geo is null.",
)
@option("--geocoder-url", default=None, help="Base URL of a self-hosted geocoder.")
@option("--geocoder-user-agent", default=None)
@option("--geocoder-cache", default=None, help="Geocoder cache file.")
@option("--geocoder-region", default=None, help="Bias resolution to a region (see lmr-geocode --help).")
@option(
    "--geocoder-prior/--no-geocoder-prior",
    default=_d("geocoder_prior"),
    show_default=True,
    help="Stream prior, per input topic and event: recent confident places break ties between namesakes.",
)
@option(
    "--placed-threshold",
    type=float,
    default=_d("placed_threshold"),
    show_default=True,
    help="With --geocoder: spans scoring from this up to the threshold are emitted only when placed (1: off).",
)
@option(
    "--geocoder-offline-fallback",
    is_flag=True,
    default=_d("geocoder_offline_fallback"),
    help="Answer from the offline gazetteer when the remote geocoder fails (outage, 429, open circuit).",
)
@option(
    "--geocoder-rate-file",
    default=_d("geocoder_rate_file"),
    type=click.Path(dir_okay=False),
    help="Share the remote geocoder's request rate with every worker on this host naming this file.",
)
@option(
    "--geocoder-memory",
    default=_d("geocoder_memory"),
    type=click.Path(dir_okay=False),
    help="Place memory (lmr-geocode learn): names annotators placed are answered with their place.",
)
@option(
    "--text-field",
    default=_d("text_field"),
    show_default=True,
    help="Field holding the post text (text/full_text also tried).",
)
@option(
    "--id-field",
    default=_d("id_field"),
    show_default=True,
    help="Field holding the post id (id/tweet_id/id_str also tried).",
)
@option(
    "--max-text-bytes",
    type=int,
    default=_d("max_text_bytes"),
    show_default=True,
    help="Longer texts go to the DLQ (text_too_large).",
)
@option(
    "--batch-size",
    type=int,
    default=_d("batch_size"),
    show_default=True,
    help="Close a micro-batch at this many messages...",
)
@option(
    "--max-wait-ms",
    type=int,
    default=_d("max_wait_ms"),
    show_default=True,
    help="...or this long after its first message.",
)
@option(
    "--inference-batch-size",
    type=int,
    default=_d("inference_batch_size"),
    show_default=True,
    help="Posts per model forward pass.",
)
@option("--threshold", type=float, default=None, help="Mention score threshold (default: the model's).")
@option(
    "--runtime",
    type=click.Choice(["auto", *catalog.names()]),
    default=_d("runtime"),
    show_default=True,
    help="Inference path (auto = the measured fastest for the device; see README 'Fast inference').",
)
@option("--device", type=click.Choice(["cpu", "cuda"]), default=_d("device"), show_default=True)
@option("--threads", type=int, default=_d("threads"), show_default=True, help="Inference threads (0 = default).")
@option(
    "--chunk-words",
    type=int,
    default=_d("chunk_words"),
    show_default=True,
    help="Window in words for long posts (0 = the model's).",
)
@option(
    "--chunk-overlap",
    type=int,
    default=_d("chunk_overlap"),
    show_default=True,
    help="Words shared by consecutive windows.",
)
@option(
    "--text-cache-bytes",
    type=int,
    default=_d("text_cache_bytes"),
    show_default=True,
    help="Memory bound of the mentions kept by text, so a repeated text (retweet, copy) is not read again; 0 = off.",
)
@option(
    "--max-chunks",
    type=int,
    default=_d("max_chunks"),
    show_default=True,
    help="Windows read per post (at least 1); beyond, the event is flagged truncated.",
)
@option(
    "--reload-check-s",
    type=float,
    default=_d("reload_check_s"),
    show_default=True,
    help="Check LATEST this often (0 = never reload).",
)
@option(
    "--metrics-port",
    type=int,
    default=_d("metrics_port"),
    show_default=True,
    help="Serve /metrics /healthz /readyz here (0 = off).",
)
@option(
    "--metrics-host",
    default=_d("metrics_host"),
    show_default=True,
    help="Address for the metrics server (0.0.0.0 in containers).",
)
@option(
    "--metrics-allowed-host",
    "metrics_allowed_hosts",
    multiple=True,
    help="Also answer requests for this Host name (repeatable; * = any). IP addresses, localhost and "
    "--metrics-host are always answered; other names get 403 (DNS rebinding guard).",
)
@option(
    "--shutdown-timeout-s",
    type=float,
    default=_d("shutdown_timeout_s"),
    show_default=True,
    help="Longest drain on SIGTERM.",
)
@option("--retry-backoff-s", type=float, default=_d("retry_backoff_s"), show_default=True)
@option("--retry-backoff-max-s", type=float, default=_d("retry_backoff_max_s"), show_default=True)
@option("--flush-timeout-s", type=float, default=_d("flush_timeout_s"), show_default=True)
@option(
    "--max-messages",
    type=int,
    default=_d("max_messages"),
    show_default=True,
    help="Stop after this many messages (0 = run until stopped).",
)
@option(
    "--idle-exit-s",
    type=float,
    default=_d("idle_exit_s"),
    show_default=True,
    help="Stop after this long without input while partitions are assigned (0 = never).",
)
def run_cmd(config: str | None, create_topics: int, **kw: Any) -> None:
    """Consume posts, extract (and resolve) locations, produce enriched events.

    Delivery is at-least-once: offsets are committed only after the batch's events
    and dead letters were acknowledged. SASL passwords come from LMR_SASL_PASSWORD.

    \b
    Examples:
      lmr-worker run --bootstrap-servers kafka:9092 --input-topic posts \\
          --output-topic posts.enriched --dlq-topic posts.dlq --group-id lmr \\
          --model registry/lmr --batch-size 32 --max-wait-ms 200 --metrics-port 9108
      lmr-worker run --model registry/lmr --source file:posts.jsonl --sink file:out.jsonl
    """
    from worker.app import Worker
    from worker.broker import create_topics as make_topics

    try:
        settings = WorkerSettings.from_params(kw)
        if create_topics and not settings.file_mode:
            names = [settings.input_topic, settings.output_topic] + ([settings.dlq_topic] if settings.dlq_topic else [])
            made = make_topics(
                settings.kafka.bootstrap_servers,
                [(n, create_topics) for n in names],
                admin_config=settings.kafka.common(),
            )
            if made:
                log.info("created topics %s with %d partitions", made, create_topics)
        worker = Worker(settings)
        code = worker.run()
    except LmrError as exc:
        fail(exc)
        return
    if worker.signalled:  # a stop must end within --shutdown-timeout-s: no interpreter teardown to wait for
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@main.command("broker")
@option("--port", type=int, default=9092, show_default=True, help="Port on 127.0.0.1 (0 = a free one).")
@option("--topic", "topics", multiple=True, help="Create NAME[:PARTITIONS] at start (repeatable).")
def broker_cmd(port: int, topics: tuple[str, ...]) -> None:
    """Run an embedded Kafka-compatible broker (Tansu, memory storage) on 127.0.0.1 until Ctrl-C.

    For local trials and tests only: data is lost when it stops. Production: point
    --bootstrap-servers at your Kafka.

    \b
    Example:
      lmr-worker broker --port 9092 --topic posts:4 --topic posts.enriched:4 --topic posts.dlq
    """
    from worker.broker import EmbeddedBroker

    specs: list[tuple[str, int]] = []
    for t in topics:
        name, _, count = t.partition(":")
        if not name or (count and not count.isdigit()):
            raise click.BadParameter(f"{t!r} is not NAME or NAME:PARTITIONS.", param_hint="--topic")
        specs.append((name, int(count or 1)))

    def _term(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)  # stop the Tansu child on SIGTERM too (docker stop)
    try:
        with EmbeddedBroker(port) as b:
            for name, n in specs:
                b.create_topic(name, n)
            click.echo(f"broker ready on {b.bootstrap} (memory storage; Ctrl-C to stop)", err=True)
            while b.running():
                time.sleep(0.5)
            click.echo("broker exited", err=True)
            sys.exit(1)
    except LmrError as exc:
        fail(exc)
    except KeyboardInterrupt:
        click.echo("broker stopped", err=True)


@main.command("replay", cls=SectionedCommand, sections=hs.REPLAY_SECTIONS, option_help=hs.OPTION_HELP)
@kafka_options
@click.argument("files", nargs=-1, required=True)
@option("--topic", required=True, help="Topic to produce to.")
@option("--rate", type=float, default=None, help="Records per second.")
@option("--speed", type=float, default=None, help="Replay the original time gaps this many times faster.")
@option("--max", "as_fast", is_flag=True, default=False, help="As fast as possible (the default).")
@option(
    "--id-field", default=_d("id_field"), show_default=True, help="Key = this field (id/tweet_id/id_str also tried)."
)
@option(
    "--now-timestamps", is_flag=True, default=False, help="Use the send time as record timestamp instead of created_at."
)
@option("--limit", type=int, default=0, help="Send at most this many records (0 = all).")
def replay_cmd(
    files: tuple[str, ...],
    topic: str,
    rate: float | None,
    speed: float | None,
    as_fast: bool,
    id_field: str,
    now_timestamps: bool,
    limit: int,
    **kw: Any,
) -> None:
    """Produce archived posts (IDRISI or any JSONL) in created_at order, created_at as record timestamp.

    \b
    Example:
      lmr-worker replay idrisi:lmr/test_unlabeled \\
          --bootstrap-servers 127.0.0.1:9092 --topic posts --rate 100
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from lmr.readers import expand_paths
    from worker.replay import read_records, replay

    if sum(x is not None and x is not False for x in (rate, speed, as_fast or None)) > 1:
        raise click.UsageError("Pass at most one of --rate, --speed, --max.")
    if (rate is not None and rate <= 0) or (speed is not None and speed <= 0):
        raise click.UsageError("--rate and --speed must be positive.")
    paths: list[str] = []
    try:
        paths = [str(p) for p in expand_paths(files)]  # files, folders, globs, idrisi:lmr/test_unlabeled
        kafka = KafkaSettings(**{k: v for k, v in kw.items() if v is not None}, **_secrets())
        recs = read_records(paths, id_field=id_field)
        if limit:
            recs = recs[:limit]
        producer = KafkaProducer(**kafka.producer())
    except LmrError as exc:
        fail(exc)
        return
    except KafkaError as exc:
        raise click.ClickException(
            f"Cannot reach Kafka at {kw.get('bootstrap_servers')}: {exc}. Fix: check --bootstrap-servers."
        ) from exc
    try:
        stats = replay(producer, topic, recs, rate=rate, speed=speed, keep_timestamps=not now_timestamps)
    finally:
        producer.close()
    click.echo(json.dumps({"topic": topic, "files": len(paths), **stats}))
    if stats["failed"]:
        sys.exit(1)


def _secrets() -> dict[str, Any]:
    from lmr.config import secret_from_env
    from worker.settings import SASL_PASSWORD_ENV, SSL_KEY_PASSWORD_ENV

    return {
        "sasl_password": secret_from_env(SASL_PASSWORD_ENV),
        "ssl_key_password": secret_from_env(SSL_KEY_PASSWORD_ENV),
    }


@main.command("evaluate", cls=SectionedCommand, option_help=hs.OPTION_HELP)
@click.argument("output", nargs=1, required=True)
@click.argument("gold", nargs=-1, required=True)
@option("--id-field", default=_d("id_field"), show_default=True)
@option("--json", "as_json", is_flag=True, default=False, help="Print the full result as JSON.")
@km_option
@report_option("GOLD points")
def evaluate_cmd(
    output: str, gold: tuple[str, ...], id_field: str, as_json: bool, km: float, report: str | None
) -> None:
    """Score enriched events (from --sink file:OUT.jsonl) against gold posts, matched by post id.

    Spans are scored as recognised; where the gold carries points (IDRISI-D lmd/, or mentions with
    lat/lon), places are also scored end to end: the span and a point within --km (docs/end-to-end.md).

    \b
    Example:
      lmr-worker run --model registry/lmr --source file:dev.jsonl --sink file:out.jsonl --geocoder offline
      lmr-worker evaluate out.jsonl idrisi:lmd/dev --report report.html
    """
    from geocode.endtoend import score_event_files, summary_lines
    from lmr.evaluation import ScoredPosts, evaluate_events

    try:
        posts: ScoredPosts = []
        res = evaluate_events([output], list(gold), id_field=id_field, posts=posts)
        e2e = score_event_files([output], list(gold), id_field=id_field, km=km)
        if e2e is not None:
            res["end_to_end"] = e2e[0]
        if report:
            _write_evaluation_report(
                report, res, posts, e2e, f"worker output {output} · models {', '.join(res['models'])}"
            )
    except LmrError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    click.echo(
        f"posts {res['n_posts']} (missing from output: {res['missing_posts']})  models {', '.join(res['models'])}\n"
        f"exact   P {res['precision']:.4f}  R {res['recall']:.4f}  F1 {res['f1']:.4f}\n"
        f"overlap P {res['overlap_precision']:.4f}  R {res['overlap_recall']:.4f}  F1 {res['overlap_f1']:.4f}\n"
        f"WER {res['wer']:.4f}"
    )
    if e2e is not None:
        click.echo("\n".join(summary_lines(e2e[0])))


def _write_evaluation_report(path: str, res: dict[str, Any], posts: Any, e2e: Any, subtitle: str) -> None:
    from geocode.endtoend_report import write_evaluation_report

    write_evaluation_report(path, res, posts, e2e, subject="worker output evaluation", subtitle=subtitle)
    click.echo(f"report: {path}", err=True)


if __name__ == "__main__":
    main()
