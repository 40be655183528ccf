"""docker/: the compose file and both Dockerfiles, checked without a Docker engine.

Static checks parse docker/compose.yaml (PyYAML) and the Dockerfiles, and cross-check them with
the project itself (the torch pin and packages in pyproject.toml, the real CLI options behind every
LMR_* variable), so a rename in the code that the images would silently miss fails here.
The worker image's health check script runs for real against the worker's own metrics server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = {"worker": DOCKER / "worker.Dockerfile", "trainer": DOCKER / "trainer.Dockerfile"}
HEALTHCHECK = DOCKER / "healthcheck.py"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY")
INTERPOLATED = re.compile(r"^\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}$")


# ---------------------------------------------------------------- Dockerfile parsing


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages): continuation lines joined, comments and parser directives dropped.

    A stage's image is its FROM line with the global ARG defaults substituted.
    """
    logical: list[str] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, f"{path.name}: dangling line continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            # FROM ${BASE_IMAGE}: the default of the global ARG, as a build without --build-arg sees it.
            stages.append(Stage(expand(parts[0], global_args), name))
        elif not stages:
            assert keyword == "ARG", f"{path.name}: {keyword} before the first FROM"
            key, _, value = rest.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    return global_args, stages


def stage_args(stage: Stage) -> dict[str, str]:
    out = {}
    for a in stage.args("ARG"):
        key, _, value = a.partition("=")
        out[key] = value
    return out


def stage_env(stage: Stage) -> dict[str, str]:
    out = {}
    for e in stage.args("ENV"):
        for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', e):
            out[m.group(1)] = m.group(2).strip('"')
    return out


def split_volume(spec: str) -> tuple[str, str, str]:
    """(source, target, mode) of a short-syntax volume; the source may be ${VAR:-default}."""
    m = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(\w+))?", spec)
    assert m, f"cannot parse volume {spec!r}"
    return m[1], m[2], m[3] or "rw"


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def torch_pin(pyproject: dict[str, Any]) -> str:
    pins = [str(d) for d in pyproject["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, "pyproject.toml should pin torch exactly once"
    return pins[0].split("==", 1)[1].strip()


# ---------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("which", sorted(DOCKERFILES))
def test_dockerfile_multistage_pinned_and_nonroot(which: str) -> None:
    _, stages = parse_dockerfile(DOCKERFILES[which])
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    stage_names = {s.name for s in stages if s.name}
    for s in stages:
        if s.image in stage_names:
            continue
        repo, _, tag = s.image.rpartition(":")
        assert repo and "/" not in tag, f"{s.image}: base image without a tag"
        assert tag not in ("latest", "stable", "edge"), f"{s.image}: floating tag"
        assert "$" not in s.image, f"{s.image}: base image from a variable is not pinned in the file"
        assert re.search(r"\d", tag), f"{s.image}: tag without a version"
    final = stages[-1]
    assert any(a.startswith("--from=") for a in final.args("COPY")), "runtime stage copies nothing from the builder"
    users = final.args("USER")
    assert users, "the runtime stage must switch to a non-root USER"
    user = expand(users[-1], stage_args(final)).split(":")[0]
    assert user not in ("root", "0", ""), f"final USER is {user!r}"
    if user.isdigit():
        assert int(user) >= 1000, f"final UID {user} collides with system accounts"
    assert final.args("WORKDIR"), "runtime stage has no WORKDIR"
    env = stage_env(final)
    assert env.get("PYTHONUNBUFFERED") == "1"
    # HF_HOME is created in the runtime stage and owned (chown -R) by the user the image runs as.
    hf_home = env.get("HF_HOME", "")
    assert hf_home.startswith("/"), "HF_HOME is not set to an absolute path"
    runs = " && ".join(final.args("RUN"))
    assert re.search(rf"mkdir -p [^&]*{re.escape(hf_home)}(\s|$)", runs), "HF_HOME is not created"
    account = re.search(r'useradd [^&]*--uid "?\$\{?LMR_UID\}?"? [^&]*?(\w+)\s*(&&|$)', runs)
    assert account, "no useradd for the LMR_UID user"
    chowned = [
        path
        for owner, paths in re.findall(r"chown -R (\S+) ([^&]+)", runs)
        if owner.split(":")[0] == account[1]
        for path in paths.split()
    ]
    assert any(hf_home == d or hf_home.startswith(d.rstrip("/") + "/") for d in chowned), (hf_home, chowned)
    for cmd in ("ENTRYPOINT", "CMD"):
        for a in final.args(cmd):
            assert a.startswith("["), f"{cmd} {a}: use the exec form so the process gets SIGTERM"


@pytest.mark.parametrize("which", sorted(DOCKERFILES))
def test_dockerfile_installs_the_project_with_its_torch_pin(which: str, pyproject: dict[str, Any]) -> None:
    _, stages = parse_dockerfile(DOCKERFILES[which])
    builder = stages[0]
    args = stage_args(builder)
    assert args.get("TORCH_VERSION") == torch_pin(pyproject), "the image's torch differs from pyproject.toml"
    runs = [expand(r, args) for r in builder.args("RUN")]
    pin = re.escape(torch_pin(pyproject))
    assert any(re.search(rf"pip install .*torch=={pin}\b", r) for r in runs), "torch is not installed at the pin"
    # Each image installs its role's extra only: the worker image carries no training stack.
    role = {"worker": "worker", "trainer": "train"}[which]
    assert role in pyproject["project"]["optional-dependencies"], f"pyproject.toml has no [{role}] extra"
    assert any(re.search(rf"pip install (--no-cache-dir )?'\.\[{role}\]'(\s|$)", r) for r in runs), (
        f"pip install '.[{role}]' missing"
    )
    assert not any(" -e " in r for r in runs if "pip install" in r), "editable install would need /src at run time"
    # Everything setuptools packages, and the README the metadata reads, is in the build context.
    copied = " ".join(builder.args("COPY"))
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        pkg = pattern.rstrip("*")
        assert re.search(rf"(^|\s){pkg}(\s|$)", copied), f"{which}.Dockerfile does not COPY the {pkg} package"
    assert pyproject["project"]["readme"] in copied


@pytest.mark.parametrize("which", sorted(DOCKERFILES))
def test_build_context_is_allowlisted(which: str) -> None:
    """BuildKit's <Dockerfile>.dockerignore keeps .venv, runs/, registry/ and .git out of the context."""
    ignore = DOCKERFILES[which].with_name(DOCKERFILES[which].name + ".dockerignore")
    rules = [r.strip() for r in ignore.read_text(encoding="utf-8").splitlines() if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "start from 'ignore everything' and re-include what the image needs"
    _, stages = parse_dockerfile(DOCKERFILES[which])
    for stage in stages:
        for copy in stage.args("COPY"):
            if "--from=" in copy:
                continue  # from another stage, not from the context
            sources = [p for p in copy.split() if not p.startswith("--")][:-1]
            for src in sources:
                assert f"!{src}" in rules, f"{which}: COPY {src} is excluded by {ignore.name}"
    heavy = (".venv", "runs", "registry", ".git")
    assert not any(r.startswith("!") and r[1:].split("/")[0] in heavy for r in rules)


def test_worker_image_sources(pyproject: dict[str, Any]) -> None:
    _, stages = parse_dockerfile(DOCKERFILES["worker"])
    builder = stages[0]
    assert stage_args(builder)["TORCH_INDEX_URL"].endswith("/whl/cpu"), "the worker image is CPU-only"
    py = re.search(r"python:(\d+)\.(\d+)", builder.image)
    assert py, builder.image
    need = re.search(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert need and (int(py[1]), int(py[2])) >= (int(need[1]), int(need[2]))
    final = stages[-1]
    env = stage_env(final)
    assert env["HF_HUB_OFFLINE"] == "1", "the worker reads local models only"
    port = env["LMR_METRICS_PORT"]
    assert final.args("EXPOSE") == [port]
    health = final.args("HEALTHCHECK")
    assert health and "healthcheck.py" in health[0]
    assert any("docker/healthcheck.py" in c for c in final.args("COPY"))


@pytest.mark.parametrize(("which", "offline"), [("worker", True), ("trainer", False)])
def test_images_set_the_environment_defaults_of_lmr(which: str, offline: bool) -> None:
    """The images mirror lmr/environment.py: every process quiet, the worker offline; the trainer may reach the hub."""
    from lmr.environment import OFFLINE, QUIET

    env = stage_env(parse_dockerfile(DOCKERFILES[which])[1][-1])
    assert {k: env.get(k) for k in QUIET} == QUIET
    assert ({k: env.get(k) for k in OFFLINE} == OFFLINE) if offline else not set(OFFLINE) & set(env)


def test_trainer_image_is_cuda() -> None:
    _, stages = parse_dockerfile(DOCKERFILES["trainer"])
    assert all(s.image.startswith("nvidia/cuda:") for s in stages)
    assert len({s.image for s in stages}) == 1, "builder and runtime must share a base (the venv links its python)"


# ---------------------------------------------------------------- compose


def test_kafka_is_official_kraft(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["CLUSTER_ID"] and "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    listeners = dict(x.split("://", 1) for x in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(x.split("://", 1) for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(x.split(":", 1) for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) == set(protocols)
    # Clients authenticate on every advertised listener; the controller stays on loopback.
    for name in advertised:
        assert protocols[name].startswith("SASL_"), f"listener {name} is not authenticated"
        assert f"KAFKA_LISTENER_NAME_{name}_PLAIN_SASL_JAAS_CONFIG" in env
    assert listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]].startswith("127.0.0.1:")
    # The host listener is advertised on loopback, and its port is the one published.
    host_side = [n for n, a in advertised.items() if a.startswith("127.0.0.1:")]
    assert len(host_side) == 1
    container_port = listeners[host_side[0]].rsplit(":", 1)[1]
    assert any(p == f"{advertised[host_side[0]]}:{container_port}" for p in kafka["ports"])
    assert "healthcheck" in kafka


def test_every_published_port_is_loopback_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, svc in compose["services"].items():
        for p in svc.get("ports", []):
            published += 1
            if isinstance(p, dict):
                assert p.get("host_ip") == "127.0.0.1", f"{name}: {p}"
            else:
                assert isinstance(p, str) and p.startswith("127.0.0.1:"), f"{name}: port {p!r} binds all interfaces"
        assert svc.get("network_mode") != "host", f"{name} uses the host network"
    assert published >= 2


def test_worker_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = services["worker"]
    deps = worker["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["topics"]["condition"] == "service_completed_successfully"
    assert worker["build"]["dockerfile"] == "docker/worker.Dockerfile"
    assert (COMPOSE.parent / worker["build"]["context"]).resolve() == REPO
    env = worker["environment"]
    mounts = {split_volume(v)[1]: split_volume(v) for v in worker["volumes"]}
    assert mounts["/models"][2] == "ro", "the worker only reads the registry"
    assert env["LMR_MODEL"].startswith("/models/")
    assert env["LMR_BOOTSTRAP_SERVERS"].split(":")[0] == "kafka"
    assert env["LMR_SECURITY_PROTOCOL"].startswith("SASL_")
    # Scale-out: no fixed container name, several replicas, a host port range wide enough for them.
    assert "container_name" not in worker
    replicas = worker["deploy"]["replicas"]
    assert replicas >= 2
    (port,) = worker["ports"]
    lo, hi = (int(x) for x in port.split(":")[1].split("-"))
    assert hi - lo + 1 >= replicas
    assert port.endswith(":" + env["LMR_METRICS_PORT"])
    # SIGTERM drains within LMR_SHUTDOWN_TIMEOUT_S; compose must wait longer before SIGKILL.
    assert int(str(worker["stop_grace_period"]).rstrip("s")) > float(env["LMR_SHUTDOWN_TIMEOUT_S"])


def test_topics_cover_what_the_worker_uses(compose: dict[str, Any]) -> None:
    services = compose["services"]
    topics = services["topics"]
    assert topics["image"] == services["kafka"]["image"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    spec = re.fullmatch(r"\$\{LMR_TOPICS:-(.+)\}", topics["environment"]["LMR_TOPICS"])
    assert spec, "LMR_TOPICS should have a default"
    partitions = {t.split(":")[0]: int(t.split(":")[1]) for t in spec[1].split()}
    env = services["worker"]["environment"]
    for key in ("LMR_INPUT_TOPIC", "LMR_OUTPUT_TOPIC", "LMR_DLQ_TOPIC"):
        assert env[key] in partitions, f"{env[key]} is not created"
    assert partitions[env["LMR_INPUT_TOPIC"]] >= services["worker"]["deploy"]["replicas"]
    assert "--if-not-exists" in topics["command"][0]
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_trainer_service_uses_the_gpu(compose: dict[str, Any]) -> None:
    services = compose["services"]
    trainer = services["trainer"]
    assert trainer["profiles"] == ["train"]
    devices = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert trainer["build"]["dockerfile"] == "docker/trainer.Dockerfile"
    mounts = {split_volume(v)[1]: split_volume(v) for v in trainer["volumes"]}
    assert {"/data", "/models", "/runs"} <= set(mounts)
    assert mounts["/data"][2] == "ro" and mounts["/models"][2] == "rw"
    # The trainer publishes where the workers read: the same host directory.
    worker_mounts = {split_volume(v)[1]: split_volume(v) for v in services["worker"]["volumes"]}
    assert mounts["/models"][0] == worker_mounts["/models"][0]
    assert trainer["environment"]["LMR_REGISTRY"] == "/models"


def _secret_key(key: str) -> bool:
    return any(w in key.upper() for w in SECRET_WORDS)


def test_no_plaintext_secrets(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        for key, value in env.items():
            if _secret_key(key):
                assert value is None or INTERPOLATED.match(str(value)), f"{name}.{key} has a literal value"
                if value is not None:
                    assert ":?" in str(value), f"{name}.{key} should refuse to start when unset"
    text = COMPOSE.read_text(encoding="utf-8")
    # JAAS lines: every password (password="...", user_NAME="...") comes from the environment.
    jaas = re.findall(r'(password|user_[\w${}:-]+)="([^"]*)"', text)
    assert jaas, "no JAAS entries found"
    for key, value in jaas:
        assert INTERPOLATED.match(value) or value == "%s", f'{key}="{value}" is a literal password'
    # The example env file ships no values for the secrets.
    example = (DOCKER / "lmr.env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and _secret_key(key):
            assert value == "", f"lmr.env.example sets {key}"


def test_compose_environment_names_real_cli_options(compose: dict[str, Any]) -> None:
    """Every LMR_* variable set by compose or the images is read by the command it configures."""
    from trainer.cli import main as trainer_main
    from worker.cli import main as worker_main
    from worker.settings import SASL_PASSWORD_ENV, SSL_KEY_PASSWORD_ENV

    def envvars(group: click.Group, command: str) -> set[str]:
        names: set[str] = set()
        for p in [*group.params, *group.commands[command].params]:
            if isinstance(p.envvar, str):
                names.add(p.envvar)
            elif p.envvar:
                names.update(p.envvar)
        return names

    known = {
        "worker": envvars(worker_main, "run") | {SASL_PASSWORD_ENV, SSL_KEY_PASSWORD_ENV},
        "trainer": envvars(trainer_main, "run"),
    }
    for which in ("worker", "trainer"):
        env = compose["services"][which]["environment"]
        _, stages = parse_dockerfile(DOCKERFILES[which])
        image_env = stage_env(stages[-1])
        for key in [*env, *image_env]:
            if key.startswith("LMR_"):
                assert key in known[which], f"{which}: {key} is not an option of `lmr-{which} run`"


def _interpolate(value: Any, secret: str) -> str:
    """Compose-style ${VAR:-default} -> default, ${VAR:?message} -> a stand-in secret."""

    def one(m: re.Match[str]) -> str:
        op, arg = m[2] or "", m[3] or ""
        return secret if op.endswith("?") else arg

    return re.sub(r"\$\{([A-Z0-9_]+)(:?[?-])?([^}]*)\}", one, str(value))


def test_compose_worker_environment_is_a_valid_worker_config(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lmr-worker run` parses the compose environment (and the image's) into valid settings."""
    from worker.cli import main as worker_main
    from worker.settings import WorkerSettings

    for key in [k for k in os.environ if k.startswith("LMR_")]:
        monkeypatch.delenv(key)
    secret = "stand-in-Secret-42"
    _, stages = parse_dockerfile(DOCKERFILES["worker"])
    env = {**stage_env(stages[-1]), **compose["services"]["worker"]["environment"]}
    for key, value in env.items():
        if key.startswith("LMR_"):
            monkeypatch.setenv(key, _interpolate(value, secret))
    run = worker_main.commands["run"]
    with run.make_context("run", []) as ctx:
        settings = WorkerSettings.from_params(ctx.params)
    assert settings.kafka.bootstrap_servers == "kafka:19092"
    assert settings.kafka.security_protocol == "SASL_PLAINTEXT" and settings.kafka.sasl_mechanism == "PLAIN"
    assert settings.kafka.sasl_username == "lmr" and settings.kafka.sasl_password == secret
    assert settings.kafka.consumer()["sasl_plain_password"] == secret
    assert (settings.input_topic, settings.output_topic, settings.dlq_topic) == ("posts", "posts.enriched", "posts.dlq")
    assert settings.model == "/models/lmr-location"
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9108)
    assert secret not in repr(settings) and secret not in repr(settings.redacted())


def test_default_model_name_matches_the_trainer(compose: dict[str, Any]) -> None:
    from trainer.cli import main as trainer_main

    (name_opt,) = [p for p in trainer_main.commands["run"].params if p.name == "name"]
    default = name_opt.default
    assert compose["services"]["worker"]["environment"]["LMR_MODEL"] == f"/models/${{LMR_MODEL_NAME:-{default}}}"
    _, stages = parse_dockerfile(DOCKERFILES["worker"])
    assert stage_env(stages[-1])["LMR_MODEL"] == f"/models/{default}"


# ---------------------------------------------------------------- the health check, for real


def _healthcheck(port: int | str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LMR_METRICS_PORT": str(port), "LMR_HEALTHCHECK_TIMEOUT_S": "3"}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_healthcheck_against_the_worker_metrics_server() -> None:
    from worker.metrics import Health, Metrics, MetricsServer

    health = Health(stall_s=60.0)
    server = MetricsServer(Metrics(), health, host="127.0.0.1", port=0).start()
    try:
        ok = _healthcheck(server.port)
        assert ok.returncode == 0, ok.stderr
        assert "200" in ok.stdout
        health.last_tick = time.monotonic() - 3600  # the main loop stalled an hour ago
        stalled = _healthcheck(server.port)
        assert stalled.returncode == 1
        assert "503" in stalled.stderr
    finally:
        server.stop()
    # Nothing listens there any more.
    refused = _healthcheck(server.port)
    assert refused.returncode == 1
    assert _healthcheck("not-a-port").returncode == 1
    disabled = _healthcheck(0)
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
