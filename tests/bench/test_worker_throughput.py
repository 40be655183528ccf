"""The worker benchmark's Arabic-mix step (:mod:`bench.worker_throughput`), with tiny sizes and the tiny model:
the mixed stream and the English-only one go through one worker in the same run, and both figures come out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.worker_throughput import main, mixed_streams
from lmr.language import script_of


def test_the_mixed_stream_is_the_english_one_with_arabic_posts_evenly_between(idrisi_dir: Path) -> None:
    english, mixed = mixed_streams(20, 0.25)
    assert len(english) == len(mixed) == 20
    scripts = [script_of(p["text"]) for p in mixed]
    assert [i for i, s in enumerate(scripts) if s == "arabic"] == [3, 7, 11, 15, 19]
    assert [p for p in mixed if not p["id"].startswith("ar-")] == english[:15], "the same English posts, in order"
    assert len({p["text"] for p in mixed}) == 20


def test_a_share_above_1_stops_the_benchmark_before_it_loads_a_model(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="between 0 and 1"):
        main(["--model", str(tmp_path / "no-model"), "--arabic-share", "1.5"])


@pytest.mark.slow
def test_the_arabic_mix_is_measured_beside_english_only(
    idrisi_dir: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = tmp_path / "worker.json"
    main([
        "--model", str(tiny_model), "--runtime", "torch", "--posts", "8", "--rounds", "0", "--naive-posts", "0",
        "--latency-seconds", "0", "--fetch-max-wait-ms", "100", "--arabic-share", "0.25", "--arabic-posts", "16",
        "--arabic-rounds", "2", "--json", "--result", str(result),
    ])  # fmt: skip
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["mixed_scripts"].get("arabic") == 4 and sum(res["mixed_scripts"].values()) == 16
    assert res["english_only_posts_s"] > 0 and res["mixed_posts_s"] > 0
    assert res["mixed_vs_english"] == pytest.approx(res["mixed_posts_s"] / res["english_only_posts_s"], abs=0.01)
    (row,) = json.loads(result.read_text(encoding="utf-8"))["rows"]
    assert row["arabic_mix_over_english"] == res["mixed_vs_english"] and row["runtime"] == "torch"
