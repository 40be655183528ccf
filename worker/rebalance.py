"""A rebalance seen from the batch in hand: which uncommitted records stay, which go to the new owner.

Revoked partitions wait for the new assignment. Those given to another member are dropped from the
batch in hand and from the records stashed while it was held (uncommitted: the new owner reads them
again from the last commit: duplicates, never losses); those given back are kept, since
kafka-python keeps their fetch position. Nothing runs on kafka-python's network thread: the source
only records what its listener saw, and :meth:`Rebalance.apply` runs on the worker's thread.
"""

from __future__ import annotations

import logging

from worker.checkpoint import Checkpoint
from worker.metrics import Metrics
from worker.parse import Message
from worker.sources import Partitions, Source

log = logging.getLogger(__name__)


class Rebalance:
    """Partitions revoked until the new assignment says where they go; the records dropped so far."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.pending: Partitions = set()
        self.dropped = 0

    def apply(
        self, source: Source, checkpoint: Checkpoint, stash: list[Message], fresh: list[Message]
    ) -> tuple[list[Message], list[Message]]:
        """Apply the last poll's rebalance to ``checkpoint`` (in place), ``stash`` and ``fresh`` (what that poll
        returned); returns the stash and the fresh records kept, unchanged when nothing moved."""
        self.pending |= source.take_revoked()
        assigned = source.take_assigned()
        if assigned is None or not self.pending:
            return stash, fresh
        gone, self.pending = self.pending - assigned, set()
        self.metrics.forget_partitions(gone)  # their offsets and lag are the new owner's to report
        held = len(checkpoint) + len(stash)
        checkpoint.drop(gone)
        stash = [m for m in stash if (m.topic, m.partition) not in gone]
        dropped = held - len(checkpoint) - len(stash)
        if dropped:
            self.dropped += dropped
            self.metrics.revoked_records.inc(dropped)
            log.info(
                "rebalance: %d uncommitted records of partitions now owned elsewhere %s dropped from the batch "
                "in hand (their new owner reads them again)",
                dropped,
                sorted(gone),
            )
        return stash, [m for m in fresh if (m.topic, m.partition) not in gone]
