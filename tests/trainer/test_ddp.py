"""Training in 2 processes on this CPU (gloo over loopback), as ``torchrun`` launches it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lmr.evaluation import evaluate_extractor
from lmr.model import registry
from lmr.model.extractor import load_extractor
from lmr.readers import read_examples
from tests.conftest import REPO, tiny_idrisi_records


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loopback_env(port: int) -> dict[str, str]:
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def _rank_main(rank: int, port: int, out: str) -> None:
    """One of two spawned ranks: the agreement helpers and the time budget over a real gloo group."""
    os.environ.update(_loopback_env(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    from transformers import TrainerControl

    from trainer import distributed
    from trainer.budget import budget_callback

    distributed.init("cpu")
    marker = Path(out, "first")
    with distributed.main_first():  # rank 0 leaves the marker before rank 1 enters
        saw_marker = marker.exists()
        if rank == 0:
            marker.write_text("0")
    mine = list(distributed.shard(7))
    # rank 0's budget is spent at once, rank 1's is an hour away: both must stop at this step
    budget = budget_callback(0.0 if rank == 0 else 60.0, time_schedule=False, warmup_ratio=0.0)
    control = budget.on_step_end(None, SimpleNamespace(global_step=3), TrainerControl())
    result = {
        "shard": mine,
        "gathered": distributed.gather_shards(7, [f"post{i}" for i in mine]),
        "broadcast": distributed.broadcast(f"from-{rank}"),
        "any": distributed.any_rank(rank == 1),
        "stop": control.should_training_stop,
        "main": distributed.is_main(),
        "saw_marker": saw_marker,
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    distributed.close()
    assert not distributed._active()


def test_ranks_agree_on_shards_broadcasts_and_the_time_budget(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert sorted(r0["shard"] + r1["shard"]) == list(range(7)), "every item on exactly one rank"
    assert r0["gathered"] == r1["gathered"] == [f"post{i}" for i in range(7)]
    assert r0["broadcast"] == r1["broadcast"] == "from-0"
    assert r0["any"] is r1["any"] is True
    assert r0["stop"] is r1["stop"] is True, "a spent budget on one rank stops every rank at the same step"
    assert (r0["main"], r1["main"]) == (True, False)
    assert (r0["saw_marker"], r1["saw_marker"]) == (False, True), "rank 0 runs a main_first block first"


@pytest.mark.slow
def test_torchrun_two_processes_publish_one_model(tiny_data: Path, tmp_path: Path) -> None:
    held_out = tmp_path / "held_out" / "dev.jsonl"  # 5 posts: an odd count, so the ranks' shares differ
    held_out.parent.mkdir()
    held_out.write_text("".join(json.dumps(r) + "\n" for r in tiny_idrisi_records()[:5]))
    env = {**os.environ, **_loopback_env(_free_port()), "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    env.pop("WANDB_API_KEY", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        env["MASTER_PORT"],
        "-m",
        "trainer.cli",
        "run",
        "--train",
        str(tiny_data),
        "--eval",
        str(held_out),
        "--encoder",
        "offline",
        "--max-steps",
        "4",
        "--eval-steps",
        "2",
        "--batch-size",
        "2",
        "--report-to",
        "wandb",
        "--device",
        "cpu",
        "--output-dir",
        str(tmp_path / "runs"),
        "--registry",
        str(tmp_path / "reg"),
        "--name",
        "ddp",
    ]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]

    # one published model, announced once; one W&B run
    model_dir = tmp_path / "reg" / "ddp"
    assert sorted(p.name for p in model_dir.iterdir()) == ["LATEST", "v1"]
    assert proc.stdout.count("published:") == 1
    assert log.count("Data: ") == 1 and log.count("Published ") == 1, "rank 0 alone reports the run's lines"
    assert len(list((tmp_path / "runs" / "wandb").glob("offline-run-*"))) == 1
    card: dict[str, Any] = json.loads((model_dir / "v1" / "card.json").read_text())
    assert card["training"]["processes"] == 2 and card["training"]["global_steps"] == 4
    assert [row["step"] for row in card["evaluations"]] == [2, 4]

    # every evaluation saw each held-out post exactly once: 3 on one rank, 2 on the other
    shares = re.findall(r"rank (\d) predicted (\d+) of (\d+) posts", log)
    assert shares and all(total == "5" for _, _, total in shares)
    per_rank = {r: {int(n) for rr, n, _ in shares if rr == r} for r in ("0", "1")}
    assert per_rank == {"0": {3}, "1": {2}}

    # the published metrics are a single process's metrics on the same checkpoint
    published = json.loads((model_dir / "v1" / "eval_metrics.json").read_text())
    ex = load_extractor(str(model_dir), runtime="torch")
    single, threshold = evaluate_extractor(ex, read_examples([str(held_out)]))
    assert threshold == published["threshold"] == registry.verify(model_dir / "v1")["threshold"]
    assert (single["n_posts"], single["n_gold"], single["n_pred"]) == (5, published["n_gold"], published["n_pred"])
    assert single["f1"] == pytest.approx(published["f1"]) and single["wer"] == pytest.approx(published["wer"])
