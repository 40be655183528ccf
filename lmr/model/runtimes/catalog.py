"""Which inference runtimes exist: name -> builder, and what ``auto`` and the device checks need to know of each.

The built-in runtimes are registered by :mod:`lmr.model.runtimes`; a new one is a module with a
:class:`~lmr.model.runtimes.base.Runtime` and one :func:`register` call. ``--runtime NAME`` then builds it,
and ``auto`` (:mod:`lmr.model.autotune`) measures it where its :class:`RuntimeInfo` says ``auto=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmr.errors import ConfigError
from lmr.model.runtimes.base import Runtime, RuntimeOptions
from lmr.model.runtimes.cpu import cpu_has_native_bf16

# Bump when a fast runtime's arithmetic changes: cached ``auto`` choices measured on an older engine are then ignored.
ENGINE_REVISION = 5  # 3: int8 GELU-fed layers; 4: -mixed keeps them float on any encoder; 5: Int8Kernel.for_cpu
EXACT = "fused"  # the exact fast runtime: what ``auto`` falls back to
# The fastest runtime whose exact-span F1 stays within 0.005 of plain torch (bench/inference_speed.py):
# fused-bf16 where the CPU has native bf16 instructions (AVX512-BF16 or AMX), else fused.
DEFAULT_CPU_RUNTIME = "fused-bf16"
FALLBACK_CPU_RUNTIME = EXACT
DEFAULT_GPU_RUNTIME = EXACT

Builder = Callable[[Any, RuntimeOptions], Runtime]


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime's name, how to build it for a loaded GLiNER model, and how ``auto`` and devices treat it."""

    name: str
    build: Builder | None  # None: GLiNER's own forward pass (the ``torch`` runtime)
    cpu_only: bool = False  # refused on a GPU
    auto: bool = False  # a candidate ``auto`` measures on the CPU
    auto_excluded: bool = False  # ... left out unless LMR_RUNTIME_EXCLUDE names other runtimes (slow to build)
    native_bf16: bool = False  # worth timing only where the CPU computes bfloat16 natively
    fallback_for: str = ""  # tried by ``auto`` only where this faster runtime was rejected


_RUNTIMES: dict[str, RuntimeInfo] = {}


def register(info: RuntimeInfo) -> RuntimeInfo:
    """Make ``info.name`` a runtime (``--runtime``, :func:`build`, ``auto`` where ``info.auto``)."""
    if info.name in _RUNTIMES or info.name == "auto":
        raise ConfigError(f"Runtime {info.name!r} is already registered.", "register it under another name.")
    _RUNTIMES[info.name] = info
    return info


def unregister(name: str) -> None:
    """Forget a runtime registered with :func:`register` (nothing happens for an unknown name)."""
    _RUNTIMES.pop(name, None)


def registered() -> list[RuntimeInfo]:
    """Every runtime, in the order registered (``auto`` tries its candidates in this order)."""
    return list(_RUNTIMES.values())


def names() -> tuple[str, ...]:
    """The runtime names ``--runtime`` accepts besides ``auto``."""
    return tuple(_RUNTIMES)


def info(name: str) -> RuntimeInfo:
    """The registration of ``name``; a :class:`ConfigError` naming the choices for an unknown one."""
    if name not in _RUNTIMES:
        raise ConfigError(f"Unknown runtime {name!r}.", f"use auto or one of: {', '.join(_RUNTIMES)}.")
    return _RUNTIMES[name]


def fallbacks() -> dict[str, str]:
    """Runtime -> the faster runtime whose rejection alone makes ``auto`` try it."""
    return {i.name: i.fallback_for for i in _RUNTIMES.values() if i.fallback_for}


def build(name: str, model: Any, options: RuntimeOptions | None = None) -> Runtime | None:
    """The runtime ``name`` built for ``model`` (a loaded GLiNER); ``None`` for GLiNER's own forward pass."""
    maker = info(name).build
    return None if maker is None else maker(model, options or RuntimeOptions())


def resolve_runtime(runtime: str, device: str = "cpu") -> str:
    """``auto`` -> the measured default for the device; anything else is checked and returned."""
    if runtime == "auto":
        if device.startswith("cuda"):
            return DEFAULT_GPU_RUNTIME
        return DEFAULT_CPU_RUNTIME if cpu_has_native_bf16() else FALLBACK_CPU_RUNTIME
    if info(runtime).cpu_only and device.startswith("cuda"):
        raise ConfigError(f"Runtime {runtime!r} runs on the CPU only.", "use --runtime fused or torch on a GPU.")
    return runtime
