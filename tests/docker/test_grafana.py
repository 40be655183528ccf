"""docker/: Prometheus and Grafana with the provisioned worker dashboard, checked without a Docker engine.

Every panel query must name metrics that a real :class:`worker.metrics.Metrics` exports (read back from
its own Prometheus exposition), group by labels those metrics carry, and read the provisioned data
source; Prometheus must scrape the worker service on its metrics port, and Grafana must load the
dashboard from where compose mounts it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "lmr-worker.json"
METRIC = re.compile(r"\blmr_[a-z0-9_]+\b")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SCRAPE_LABELS = {"instance", "job"}  # added by Prometheus to every series
# What the issue asks the dashboard to show, by metric.
REQUIRED = {
    "throughput": "lmr_worker_messages_in_total",
    "latency histogram": "lmr_worker_event_latency_seconds_bucket",
    "DLQ by reason": "lmr_worker_dlq_messages_total",
    "lag": "lmr_worker_consumer_lag",
    "model version": "lmr_worker_model_info",
    "geocode cache": "lmr_worker_geocode_cache_hits",
}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Sample name -> label names, as a worker's /metrics exposes them (every labelled metric touched once)."""
    from worker.metrics import Metrics

    m = Metrics()
    m.dlq.labels("not_json").inc()
    m.committed.labels("posts", "0").set(1)
    m.set_lag({("posts", 0): 5}, {("posts", 0): 3})
    m.model.info({"model": "m@v1", "ref": "/models/m", "runtime": "torch"})
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return data


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in dashboard["panels"] for t in p.get("targets", [])]


def test_every_panel_queries_metrics_the_worker_exports(
    dashboard: dict[str, Any], exported: dict[str, set[str]]
) -> None:
    assert dashboard["panels"], "the dashboard has no panels"
    for panel in dashboard["panels"]:
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
    for title, target in _targets(dashboard):
        expr = target["expr"]
        names = METRIC.findall(expr)
        assert names, f"{title}: {expr!r} names no lmr metric"
        for name in names:
            assert name in exported, f"{title}: {name} is not exported by the worker (have {sorted(exported)})"
        labels = set().union(*(exported[n] for n in names)) | SCRAPE_LABELS
        for group in BY.findall(expr):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in labels, f"{title}: groups by {label!r}, which {names} do not carry"
        for label in LEGEND.findall(target.get("legendFormat", "")):
            assert label in labels, f"{title}: legend shows {label!r}, which {names} do not carry"


def test_the_dashboard_covers_what_operators_watch(dashboard: dict[str, Any]) -> None:
    used = {n for _, t in _targets(dashboard) for n in METRIC.findall(t["expr"])}
    missing = {what: name for what, name in REQUIRED.items() if name not in used}
    assert not missing, f"no panel shows {missing}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    refs = [[t["refId"] for t in p["targets"]] for p in dashboard["panels"]]
    assert all(len(r) == len(set(r)) for r in refs), "a panel repeats a refId"


def test_panels_read_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    ds = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    (prom,) = [d for d in ds if d["type"] == "prometheus"]
    assert prom["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        for obj in (panel, *panel["targets"]):
            assert obj["datasource"] == {"type": "prometheus", "uid": prom["uid"]}, panel["title"]


def test_compose_runs_prometheus_on_the_worker_and_grafana_on_the_dashboard(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker_port = int(services["worker"]["environment"]["LMR_METRICS_PORT"])
    prom, grafana = services["prometheus"], services["grafana"]
    for svc in (prom, grafana):
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", svc["image"]), f"{svc['image']} is not pinned"
    mounts = {v.split(":")[1]: (DOCKER / v.split(":")[0]).resolve() for v in prom["volumes"] if v.startswith(".")}
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == worker_port  # every replica of the worker service
    gmounts = {v.split(":")[1]: (DOCKER / v.split(":")[0]).resolve() for v in grafana["volumes"] if v.startswith(".")}
    provision = yaml.safe_load((gmounts["/etc/grafana/provisioning"] / "dashboards" / "lmr.yaml").read_text())
    (provider,) = provision["providers"]
    assert gmounts[provider["options"]["path"]] == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "prometheus" in grafana["depends_on"]
