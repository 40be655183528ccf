"""``auto``: the fastest runtime that gives the exact runtime's answers, chosen by measurement on this machine.

At load time each candidate runtime (the registered runtimes marked ``auto``,
:mod:`lmr.model.runtimes.catalog`; bf16 only where the CPU reports native bf16; a fallback only where its
faster sibling was rejected) runs the model's
calibration set (:mod:`lmr.model.calibration`): its spans must agree with the exact runtime's
(:func:`accepts`: span F1 >= :data:`MIN_AGREEMENT` with no net loss of spans beyond
:data:`MAX_NET_LOSS`), and its speed is timed on the same posts in interleaved rounds, within a
time budget (``AutoOptions.budget_s``). The fastest agreeing
candidate wins. The choice and its figures are cached on disk, keyed by the model's weights, the
CPU's identity and the library versions, so the next start on the same machine costs nothing.

Without a calibration set, or with ``LMR_RUNTIME_PROBE=0``, ``auto`` takes the exact ``fused``
runtime without measuring (``fused-bf16`` where the CPU reports native bf16 and probing is off).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmr.model import calibration
from lmr.model.runtimes import catalog
from lmr.model.runtimes.catalog import DEFAULT_CPU_RUNTIME, ENGINE_REVISION, EXACT
from lmr.model.runtimes.cpu import cpu_flags, cpu_has_native_bf16
from lmr.words import split_words

log = logging.getLogger(__name__)

# The agreement rule (docs/inference.md, "The agreement rule"). A 200-post calibration set holds ~200 spans, so
# one span is 0.5% of agreement and the batch a post shares moves dynamic int8 by a span or two: the rule
# accepts scattered disagreements and rejects a candidate that drops spans it does not add elsewhere (a bias
# toward lower recall, what a lossy int8 shows).
MIN_AGREEMENT = 0.98  # span F1 against the exact runtime on the calibration set
MAX_NET_LOSS = 0.01  # spans lost minus spans added, as a share of the exact spans (at least 1 span allowed)
CACHE_FORMAT = 3  # 3: the agreement rule with net span loss
MAX_ROUNDS = 6  # extra timing rounds after the agreement pass


def default_exclude() -> tuple[str, ...]:
    """Candidates left out unless ``LMR_RUNTIME_EXCLUDE`` says otherwise (``onnx-int8``: exporting takes seconds)."""
    return tuple(i.name for i in catalog.registered() if i.auto and i.auto_excluded)


@dataclass(frozen=True)
class AutoOptions:
    """How ``auto`` chooses: measure or not, which candidates to leave out, the start-up budget."""

    probe: bool = True
    exclude: tuple[str, ...] = field(default_factory=default_exclude)
    budget_s: float = 10.0
    use_cache: bool = True

    @classmethod
    def from_env(cls) -> AutoOptions:
        """``LMR_RUNTIME_PROBE=0`` skips measuring; ``LMR_RUNTIME_EXCLUDE=a,b`` leaves candidates out;
        ``LMR_RUNTIME_BUDGET_S`` sets the start-up budget."""
        probe = os.environ.get("LMR_RUNTIME_PROBE", "1").strip().lower() not in ("0", "false", "no", "off")
        ex = os.environ.get("LMR_RUNTIME_EXCLUDE")
        exclude = default_exclude() if ex is None else tuple(x.strip() for x in ex.split(",") if x.strip())
        budget = float(os.environ.get("LMR_RUNTIME_BUDGET_S", "") or cls.budget_s)
        return cls(probe=probe, exclude=exclude, budget_s=budget)


@dataclass
class Candidate:
    """One candidate runtime's figures on the calibration set."""

    runtime: str
    agreement_f1: float = 0.0
    posts_per_s: float = 0.0
    build_s: float = 0.0
    agrees: bool = False
    lost: int = 0  # exact spans the candidate missed on the calibration set
    added: int = 0  # spans it found that the exact runtime did not
    note: str = ""


@dataclass
class RuntimeChoice:
    """What ``auto`` picked, why, and the figures it picked on."""

    runtime: str
    reason: str
    candidates: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False
    cpu: str = ""
    calibration_posts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuntimeChoice:
        cands = [Candidate(**c) for c in d.get("candidates", [])]
        return cls(**{**{k: v for k, v in d.items() if k in cls.__dataclass_fields__}, "candidates": cands})

    def summary(self) -> str:
        """One line for logs and benchmark output."""
        figs = ", ".join(_figures(c) for c in self.candidates)
        how = "cached" if self.cached else f"measured in {self.seconds:.1f} s"
        return f"auto -> {self.runtime} ({self.reason}; {how}{': ' + figs if figs else ''})"


def _figures(c: Candidate) -> str:
    if c.note:
        return f"{c.runtime} {c.note}"
    return f"{c.runtime} {c.posts_per_s:.1f} posts/s agree {c.agreement_f1:.3f} (-{c.lost}/+{c.added})" + (
        "" if c.agrees else " (rejected)"
    )


def cpu_identity() -> str:
    """CPU model, vector/matrix extensions, threads and library versions: what makes a timing transferable."""
    import torch

    name = platform.processor() or platform.machine()
    if name == platform.machine():  # Linux names only the architecture here: read the model name instead
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
        except OSError:
            pass
    flags = {x for x in cpu_flags() if x.startswith(("avx", "amx", "fma"))}
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "-"
    return f"{name}|{' '.join(sorted(flags))}|threads={torch.get_num_threads()}|torch={torch.__version__}|ort={ort}"


def candidates(options: AutoOptions) -> list[str]:
    """Candidate runtimes on this CPU, in the order they are tried (the exact one first)."""
    native = cpu_has_native_bf16()  # emulated bf16 is several times slower than float32: never worth timing
    runtimes = [i for i in catalog.registered() if i.auto and (native or not i.native_bf16)]
    return [i.name for i in runtimes if i.name not in options.exclude or i.name == EXACT]


def _span_set(spans: Sequence[Sequence[tuple[int, int]]]) -> set[tuple[int, int, int]]:
    return {(i, s, e) for i, ss in enumerate(spans) for s, e in ss}


def agreement(ref: Sequence[Sequence[tuple[int, int]]], got: Sequence[Sequence[tuple[int, int]]]) -> float:
    """Span-level F1 of ``got`` against ``ref`` (exact start and end), 1.0 when both are empty."""
    a, b = _span_set(ref), _span_set(got)
    return 1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b))


def differences(ref: Sequence[Sequence[tuple[int, int]]], got: Sequence[Sequence[tuple[int, int]]]) -> tuple[int, int]:
    """Spans of ``ref`` missing from ``got`` (lost) and spans of ``got`` not in ``ref`` (added)."""
    a, b = _span_set(ref), _span_set(got)
    return len(a - b), len(b - a)


def accepts(agreement_f1: float, lost: int, added: int, exact_spans: int) -> bool:
    """The agreement rule: close enough to the exact spans, and no bias toward dropping them."""
    allowed = max(1, round(MAX_NET_LOSS * exact_spans))
    return agreement_f1 >= MIN_AGREEMENT and lost - added <= allowed


def _cache_file(model_path: str, options: AutoOptions) -> Path:
    engine = f"{CACHE_FORMAT}|{ENGINE_REVISION}"
    ident = f"{engine}|{calibration.model_key(model_path)}|{cpu_identity()}|{','.join(candidates(options))}"
    return calibration.cache_dir() / "runtime" / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.json"


def _read_cached(path: Path) -> RuntimeChoice | None:
    try:
        choice = RuntimeChoice.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    choice.cached = True
    return choice


def _write_cached(path: Path, choice: RuntimeChoice) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".choice-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(choice.to_dict(), f, indent=1)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: measure again next time
        log.warning("could not cache the runtime choice in %s (%s)", path, exc)


# Builds an engine for a runtime: returns a callable (texts, words) -> list of span lists, and the engine.
Build = Callable[[str], tuple[Callable[[list[str], list[Any]], list[list[tuple[int, int]]]], Any]]


def choose(model_path: str, build: Build, options: AutoOptions | None = None) -> tuple[RuntimeChoice, Any]:
    """Pick the runtime for the model at ``model_path``; returns the choice and, when measured, its engine."""
    options = options or AutoOptions.from_env()
    if not options.probe:
        native = cpu_has_native_bf16() and DEFAULT_CPU_RUNTIME not in options.exclude
        fallback = DEFAULT_CPU_RUNTIME if native else EXACT
        return RuntimeChoice(fallback, "measurement skipped (LMR_RUNTIME_PROBE=0): chosen by CPU flags"), None
    path = _cache_file(model_path, options)
    cached = _read_cached(path) if options.use_cache else None
    if cached is not None:
        return cached, None
    cal = calibration.load(model_path)
    if cal is None:
        return RuntimeChoice(EXACT, "no calibration set: the exact runtime (write one: lmr-trainer calibrate)"), None
    choice, engine = _measure(cal, build, candidates(options), options.budget_s)
    choice.cpu = cpu_identity()
    if options.use_cache and not any(c.note for c in choice.candidates):  # a partial measurement is redone next time
        _write_cached(path, choice)
    return choice, engine


def _measure(
    cal: calibration.Calibration, build: Build, names: list[str], budget_s: float
) -> tuple[RuntimeChoice, Any]:
    t0 = time.perf_counter()
    words = [split_words(t) for t in cal.texts]
    runs: dict[str, tuple[Callable[..., Any], Any]] = {}
    figures: dict[str, Candidate] = {}
    seconds: dict[str, list[float]] = {}
    exact_spans = sum(len(s) for s in cal.spans)
    fallback_for = catalog.fallbacks()
    for name in names:
        faster = figures.get(fallback_for.get(name, ""))
        if faster is not None and faster.agrees:
            continue
        if name != EXACT and time.perf_counter() - t0 > 0.6 * budget_s:
            figures[name] = Candidate(name, note="not tried: start-up budget spent")
            continue
        b = time.perf_counter()
        run, engine = build(name)
        run(cal.texts[:16], words[:16])  # warm-up: kernels for the first shapes
        c = figures[name] = Candidate(name, build_s=round(time.perf_counter() - b, 2))
        t = time.perf_counter()
        got = run(cal.texts, words)
        seconds[name] = [(time.perf_counter() - t) / len(cal.texts)]
        c.agreement_f1 = round(agreement(cal.spans, got), 4)
        c.lost, c.added = differences(cal.spans, got)
        c.agrees = accepts(c.agreement_f1, c.lost, c.added, exact_spans)
        if c.agrees:
            runs[name] = (run, engine)
    # more interleaved timing rounds on a slice of the posts while the budget lasts (drift hits all alike)
    n = min(64, len(cal.texts))
    round_s = sum(seconds[name][0] for name in runs) * n
    rnd = 0
    while len(runs) > 1 and rnd < MAX_ROUNDS and time.perf_counter() - t0 + round_s < budget_s:
        for name in list(runs)[rnd % len(runs) :] + list(runs)[: rnd % len(runs)]:
            t = time.perf_counter()
            runs[name][0](cal.texts[:n], words[:n])
            seconds[name].append((time.perf_counter() - t) / n)
        rnd += 1
    for name, s in seconds.items():
        figures[name].posts_per_s = round(1.0 / statistics.median(s), 1)
    ok = [c for c in figures.values() if c.agrees]
    if not ok:
        return RuntimeChoice(EXACT, "no candidate agreed with the exact runtime", list(figures.values())), None
    best = max(ok, key=lambda c: c.posts_per_s)
    choice = RuntimeChoice(
        best.runtime,
        f"fastest agreeing with the exact runtime on {len(cal.texts)} calibration posts "
        f"(span F1 >= {MIN_AGREEMENT}, net span loss <= {MAX_NET_LOSS:.0%})",
        list(figures.values()),
        seconds=round(time.perf_counter() - t0, 2),
        calibration_posts=len(cal.texts),
    )
    return choice, runs[best.runtime][1]


def measure(cal: calibration.Calibration, build: Build, options: AutoOptions | None = None) -> RuntimeChoice:
    """``auto``'s measurement on ``cal`` now, without the cache (the publishing machine's figures for a card)."""
    options = options or AutoOptions.from_env()
    choice, _ = _measure(cal, build, candidates(options), options.budget_s)
    return choice
