"""The environment variables lmr's processes run under: each default stated once, set by the entry points.

:data:`QUIET` holds in every process that loads a model (set by
:func:`lmr.model.extractor.quiet_libraries`); :data:`OFFLINE` keeps the model hubs out and W&B offline,
for the tests, the demo and the processes they and the benchmarks start. ``docker/worker.Dockerfile``
and ``docker/trainer.Dockerfile`` mirror these lines (``tests/docker/test_docker.py`` checks that they agree).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Silences the tokenizers library's fork warning (it would turn its own parallelism off anyway).
QUIET = {"TOKENIZERS_PARALLELISM": "false"}
#: Models from local files only; W&B logs offline.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}


def set_defaults(*, offline: bool) -> None:
    """Set :data:`QUIET` (and :data:`OFFLINE` with ``offline``) in this process where the caller has not."""
    for name, value in {**QUIET, **(OFFLINE if offline else {})}.items():
        os.environ.setdefault(name, value)


def offline_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process that must stay offline: ``base`` (this process's) with
    :data:`QUIET` and :data:`OFFLINE` in force."""
    return {**(os.environ if base is None else base), **QUIET, **OFFLINE}
