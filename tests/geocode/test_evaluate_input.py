"""IDRISI-D files fed to ``lmr-geocode evaluate``: any content reads as gold posts or stops with a DataError."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geocode.evaluate import read_idrisi
from lmr.errors import DataError

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_mention = st.fixed_dictionaries(
    {"text": st.text(max_size=6), "type": st.text(max_size=6)},
    optional={
        "start_offset": _json,
        "end_offset": _json,
        "osm_json": st.fixed_dictionaries({}, optional={"lat": _json, "lon": _json}),
    },
)
_record = st.fixed_dictionaries({}, optional={"text": _json, "location_mentions": st.lists(_mention, max_size=2)})
_line = _record.map(json.dumps) | _json.map(json.dumps) | st.text(max_size=20)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_line, max_size=4), raw=st.binary(max_size=12))
def test_any_file_reads_as_gold_posts_or_a_data_error(lines: list[str], raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "dev.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw)
        try:
            posts = list(read_idrisi(path))
        except DataError as exc:
            assert str(path) in str(exc)
            return
        for post in posts:
            assert isinstance(post.text, str)
            for m in post.mentions:
                assert isinstance(m.lat, float) and isinstance(m.start, int)


def test_a_file_that_is_not_utf8_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match="UTF-8"):
        list(read_idrisi(path))
