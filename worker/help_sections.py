"""How ``lmr-worker run`` and ``replay`` group their options in ``--help`` (see ``lmr.clihelp``)."""

from __future__ import annotations

KAFKA = [
    "bootstrap_servers",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
    "client_id",
    "request_timeout_ms",
]
PRODUCER = ["acks", "compression_type", "linger_ms", "max_request_size"]

RUN_SECTIONS = {
    "Settings file": ["config"],
    "Connection (Kafka)": KAFKA,
    "Topics and consumer group": [
        "input_topic",
        "output_topic",
        "dlq_topic",
        "group_id",
        "create_topics",
        "auto_offset_reset",
    ],
    "Files instead of Kafka": ["source", "sink", "dlq"],
    "Model": ["model", "threshold", "runtime", "device", "threads", "reload_check_s"],
    "Geocoding": [
        "geocoder",
        "geocoder_url",
        "geocoder_user_agent",
        "geocoder_cache",
        "geocoder_region",
        "geocoder_prior",
        "placed_threshold",
        "geocoder_offline_fallback",
        "geocoder_rate_file",
        "geocoder_memory",
    ],
    "Input posts": ["text_field", "id_field", "max_text_bytes", "chunk_words", "chunk_overlap", "max_chunks"],
    "Batching": ["batch_size", "max_wait_ms", "inference_batch_size", "text_cache_bytes"],
    "Consumer tuning": [
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
        "max_poll_records",
        "fetch_max_wait_ms",
    ],
    "Producer tuning": PRODUCER,
    "Health and metrics": ["metrics_port", "metrics_host", "metrics_allowed_hosts"],
    "Retries and shutdown": [
        "retry_backoff_s",
        "retry_backoff_max_s",
        "flush_timeout_s",
        "shutdown_timeout_s",
        "max_messages",
        "idle_exit_s",
    ],
}

REPLAY_SECTIONS = {
    "Connection (Kafka)": KAFKA,
    "What to send": ["topic", "id_field", "now_timestamps", "limit"],
    "Pace": ["rate", "speed", "as_fast"],
    "Producer tuning": PRODUCER,
}

OPTION_HELP = {
    "security_protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    "ssl_check_hostname": "Check that the broker's certificate names its host.",
    "client_id": "Client name the brokers log.",
    "request_timeout_ms": "Longest wait for a broker's answer.",
    "compression_type": "Compression of produced batches.",
    "linger_ms": "Producer wait to fill a batch.",
    "max_request_size": "Largest produce request in bytes.",
    "input_topic": "Topic the posts are read from.",
    "output_topic": "Topic the enriched events go to.",
    "auto_offset_reset": "Where a new consumer group starts: earliest or latest.",
    "session_timeout_ms": "A worker silent this long leaves the group (its partitions move).",
    "heartbeat_interval_ms": "Heartbeat period to the group coordinator.",
    "max_poll_interval_ms": "Longest gap between polls before the group drops the worker.",
    "max_poll_records": "Most records one poll returns.",
    "geocoder_user_agent": "User-Agent for a remote geocoder (Nominatim requires one naming you).",
    "device": "cpu or cuda.",
    "retry_backoff_s": "First wait before retrying a failed delivery.",
    "retry_backoff_max_s": "Longest wait between delivery retries.",
    "flush_timeout_s": "Longest wait for the broker to acknowledge a batch's output.",
    "id_field": "Field holding the post id.",
}
