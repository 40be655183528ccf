"""lmr-worker: the streaming geoparsing worker (Kafka in, enriched events out, at least once)."""
