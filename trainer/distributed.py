"""Training in several processes (``torchrun``, ``accelerate launch``): ranks, and agreeing across them.

The launcher sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; :func:`init` opens PyTorch's process group
(gloo on CPUs, NCCL on GPUs) before Hugging Face's Trainer, which then uses it for data-parallel
training. Every helper is a no-op in a single process, so the same code path serves both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    """Processes in this run, from the launcher's environment (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init(device: str) -> None:
    """Open the process group when launched with several processes (and pin each rank to its GPU)."""
    if world_size() < 2:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if dist.get_rank() != 0:
        for handler in logging.getLogger().handlers:
            handler.addFilter(rank_zero_speaks)


EVERY_RANK = {"every_rank": True}  # ``extra=`` for an INFO line that each rank should log (its own share)


def rank_zero_speaks(record: logging.LogRecord) -> bool:
    """Log filter for ranks other than 0: warnings and errors, and INFO lines marked :data:`EVERY_RANK`;
    the rest (data sizes, evaluations, publishing) rank 0 reports once for the run."""
    return record.levelno > logging.INFO or bool(getattr(record, "every_rank", False))


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if _active() else 0


def is_main() -> bool:
    """Whether this process publishes, writes the card and logs to W&B (rank 0)."""
    return rank() == 0


def _device() -> Any:
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not _active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_device())
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (so all ranks take the same branch)."""
    if not _active():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def shard(n: int) -> range:
    """The indices of ``n`` items this rank handles: every item on exactly one rank."""
    if not _active():
        return range(n)
    import torch.distributed as dist

    return range(dist.get_rank(), n, dist.get_world_size())


def gather_shards(n: int, mine: list[T]) -> list[T]:
    """All ranks' :func:`shard` results put back in order (on every rank)."""
    if not _active():
        return mine
    import torch.distributed as dist

    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, mine)
    out: list[Any] = [None] * n
    for r, part in enumerate(parts):
        out[r :: len(parts)] = part
    return out


def barrier() -> None:
    if _active():
        import torch.distributed as dist

        dist.barrier()


def close() -> None:
    """Leave the process group once every rank is done. A rank that exits with the group open lets gloo's
    threads be torn down at interpreter exit, which can abort the process ("terminate called without an
    active exception": a rank of the 2-process test died so in one of two CI runs here)."""
    if _active():
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fetching data into a shared cache), then the other ranks."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()
