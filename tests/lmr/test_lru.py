"""The byte-bounded LRU: the same answers as a plain LRU model, never over its byte bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.lru import ENTRY_OVERHEAD, ByteLRU, Memo, footprint, held

OPS = st.lists(
    st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 12), st.integers(0, 5_000)), min_size=1, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, bound=st.integers(0, 20_000))
def test_answers_and_evictions_follow_a_plain_lru_and_bytes_stay_bounded(
    ops: list[tuple[str, int, int]], bound: int
) -> None:
    """A reference LRU (a list, most recent last) sized by the same byte count gives the same answers."""
    cache: ByteLRU[int, str] = ByteLRU("text", bound)
    model: list[tuple[int, str, int]] = []  # (key, value, cost), least recent first
    for op, key, n in ops:
        if op == "put":
            value = "v" * n
            cost = ENTRY_OVERHEAD + footprint(key) + footprint(value)
            model = [e for e in model if e[0] != key]
            stored = cache.put(key, value)
            assert stored == (cost <= bound)
            if stored:
                model.append((key, value, cost))
                while sum(e[2] for e in model) > bound:
                    model.pop(0)
        else:
            hit = next((e for e in model if e[0] == key), None)
            assert cache.get(key) == (hit[1] if hit else None)
            if hit:
                model = [e for e in model if e[0] != key] + [hit]
        assert cache.bytes == sum(e[2] for e in model) <= bound
        assert len(cache) == len(model)


def test_footprint_counts_what_containers_hold() -> None:
    long = "x" * 100_000
    assert footprint((long, [long], {"k": long})) > 3 * 100_000
    assert footprint((1, 2)) < 200


def test_memo_calls_once_per_key_and_registers_its_bytes() -> None:
    calls: list[str] = []

    def upper(s: str) -> str:
        calls.append(s)
        return s.upper()

    memo = Memo(upper, "division_keys", 10_000)
    assert [memo("ab"), memo("ab"), memo("cd")] == ["AB", "AB", "CD"] and calls == ["ab", "cd"]
    memo("z" * 20_000)  # over the bound alone: answered, not kept
    assert memo.cache.bytes <= 10_000 and "z" * 20_000 not in memo.cache
    now, most = held()["division_keys"]
    assert now >= memo.cache.bytes > 0 and most >= 10_000


def test_names_come_from_a_closed_list() -> None:
    with pytest.raises(ValueError, match="not one of"):
        ByteLRU("anything", 10)
    with pytest.raises(ValueError, match=">= 0"):
        ByteLRU("text", -1)
