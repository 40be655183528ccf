"""A tiny real training run -> publish -> load -> predict, registry integrity and the CLI."""

import itertools
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmr.errors import CorruptModelError, ModelNotFoundError
from lmr.model import registry
from lmr.model.extractor import load_extractor
from trainer.cli import main


def test_published_layout_and_manifest(tiny_model: Path) -> None:
    v = tiny_model / "v1"
    assert registry.read_latest(tiny_model) == "v1"
    names = {p.name for p in v.iterdir()}
    assert {
        "model.safetensors",
        "gliner_config.json",
        "lmr.json",
        "README.md",
        "manifest.json",
        "training_config.json",
    } <= names
    man = json.loads((v / "manifest.json").read_text())
    assert man["schema_version"] == 1 and man["labels"] == ["location"] and 0 < man["threshold"] < 1
    assert set(man["files"]) == names - {"manifest.json"}
    assert all(len(f["sha256"]) == 64 for f in man["files"].values())
    card = (v / "README.md").read_text()
    assert "## Evaluation" in card and "sha256" in card and "CC BY 4.0" in card
    assert "default runtime" in card and "max_width" in card
    assert json.loads((v / "lmr.json").read_text())["case_markers"] is True  # MiniLM is uncased
    # the card is data filled as the run went: one row per evaluation during training (eval_steps=8 of 16)
    data = json.loads((v / "card.json").read_text())
    assert [row["step"] for row in data["evaluations"]] == [8, 16]
    assert data["training"]["global_steps"] == 16 and data["training"]["processes"] == 1
    avg = data["training"]["checkpoint_average"]  # best (step 8 or 16) vs its average with checkpoint-16
    if "reason" in avg:  # only where there is nothing to average; a checkpoint must always be readable
        assert avg["kept"] == "best" and avg["reason"] == "the best checkpoint is the last one", avg
    else:
        assert avg["with"] == "checkpoint-16" and avg["kept"] == (
            "average" if avg["average_f1"] > avg["best_f1"] else "best"
        )
    assert data["threshold"] == man["threshold"] and data["metrics"]["n_posts"] == 8
    assert data["data"]["word_embeddings"] == "trained"  # MiniLM's 30k vocabulary: auto leaves it trainable
    assert "Evaluations during training" in card


def test_load_and_predict_offsets(tiny_model: Path) -> None:
    ex = load_extractor(str(tiny_model))
    assert ex.model_id == "tiny@v1"
    texts = ["Flooding reported in Houston, Texas tonight", "", "   ", "#HoustonFlood 🇺🇸 Québec"]
    preds = ex.predict(texts, threshold=0.0001)
    assert len(preds) == 4 and preds[1] == [] and preds[2] == []
    assert preds[0], "a threshold near zero must return candidate spans"
    for text, ms in zip(texts, preds, strict=True):
        for m in ms:
            assert text[m.start : m.end] == m.text and m.label == "location" and 0 <= m.score <= 1
        spans = sorted((m.start, m.end) for m in ms)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "flat NER: no overlaps"
    # the same model through every reference form
    assert load_extractor(str(tiny_model / "v1")).version == "v1"


def _copy(tiny_model: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "reg" / "tiny"
    shutil.copytree(tiny_model, dst)
    return dst


def test_corrupt_or_partial_models_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    m = _copy(tiny_model, tmp_path)
    (m / "v1" / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptModelError, match="not valid JSON"):
        load_extractor(str(m))
    m2 = _copy(tiny_model, tmp_path / "b")
    (m2 / "v1" / "tokenizer.json").unlink()
    with pytest.raises(CorruptModelError, match=r"tokenizer.json listed in the manifest is missing"):
        load_extractor(str(m2))
    m3 = _copy(tiny_model, tmp_path / "c")
    with (m3 / "v1" / "model.safetensors").open("r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(CorruptModelError, match="sha256"):
        load_extractor(str(m3))
    m4 = _copy(tiny_model, tmp_path / "d")
    (m4 / "LATEST").unlink()
    (m4 / "v1").rename(m4 / ".v2-partial")
    with pytest.raises(CorruptModelError, match="no complete version"):
        registry.resolve(str(m4))
    with pytest.raises(ModelNotFoundError):
        load_extractor(str(tmp_path / "nowhere" / "x"))


def test_publish_is_atomic_and_versions_increment(tiny_model: Path, tmp_path: Path) -> None:
    m = _copy(tiny_model, tmp_path)

    def write(d: Path) -> None:
        for f in (m / "v1").iterdir():
            if f.name != "manifest.json":
                shutil.copy2(f, d / f.name)

    out = registry.publish(tmp_path / "reg", "tiny", write, labels=["location"], threshold=0.4)
    assert out.name == "v2" and registry.read_latest(m) == "v2"
    assert load_extractor(str(m)).version == "v2"

    def boom(d: Path) -> None:
        (d / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        registry.publish(tmp_path / "reg", "tiny", boom, labels=["location"], threshold=0.4)
    assert registry.read_latest(m) == "v2"
    assert not any(p.name.startswith(".v3") for p in m.iterdir()), "a failed publish leaves nothing behind"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_publish_gives_files_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    """Owner-only temporary files must not leak into a registry that workers of another UID read."""

    def write(d: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=d)  # 0600, as safetensors and calibration files come out
        os.close(fd)
        os.replace(tmp, d / "model.safetensors")
        (d / "sub").mkdir(mode=0o700)
        (d / "sub" / "x.json").write_text("{}")

    old = os.umask(umask)
    try:
        out = registry.publish(tmp_path / "reg", "m", write, labels=["location"], threshold=0.4)
    finally:
        os.umask(old)
    paths = [out, out / "sub", *out.rglob("*"), out.parent / registry.LATEST]
    for path in paths:
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == want, (path, oct(path.stat().st_mode))


def test_cli_evaluate_and_predict(tiny_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(main, ["evaluate", str(tiny_model), str(tiny_data), "--json", "--threshold", "0.01"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert {"precision", "recall", "f1", "wer", "n_posts", "n_gold", "n_pred"} <= set(out)
    assert out["n_posts"] == 8 and out["n_gold"] == 10 and out["model"] == "tiny@v1"
    txt = r.invoke(main, ["evaluate", str(tiny_model), str(tiny_data)])
    assert txt.exit_code == 0 and "exact" in txt.output and "recall by type" in txt.output
    posts = tmp_path / "posts.txt"
    posts.write_text("Storm hits Miami\nall quiet\n")
    o = tmp_path / "pred.jsonl"
    res = r.invoke(main, ["predict", str(tiny_model), str(posts), "-o", str(o), "--threshold", "0.01"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in o.read_text().splitlines()]
    assert [x["text"] for x in rows] == ["Storm hits Miami", "all quiet"]
    assert all(x["text"][loc["start"] : loc["end"]] == loc["text"] for x in rows for loc in x["locations"])


def test_cli_errors_are_clear(tiny_model: Path, tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(main, ["evaluate", str(tmp_path / "none"), "x.jsonl"])
    assert res.exit_code != 0 and "No model at" in res.output
    res = r.invoke(main, ["run", "--encoder", "offline"])
    assert res.exit_code != 0 and "No training data" in res.output
    assert "Example" in r.invoke(main, ["run", "--help"]).output


def test_wandb_offline_run_directory(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    r = CliRunner()
    res = r.invoke(
        main,
        [
            "run",
            "--train",
            str(tiny_data),
            "--eval-fraction",
            "0.25",
            "--encoder",
            "offline",
            "--max-steps",
            "2",
            "--eval-steps",
            "2",
            "--report-to",
            "wandb",
            "--output-dir",
            str(tmp_path / "runs"),
            "--registry",
            str(tmp_path / "reg"),
            "--name",
            "wb",
        ],
    )
    assert res.exit_code == 0, res.output
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert runs, "an offline W&B run directory must be written"
    assert (tmp_path / "reg" / "wb" / "v1" / "manifest.json").is_file()


def test_run_on_idrisi_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--train idrisi:lmr/train``: the short reference resolves through lmr.datasets (here LMR_IDRISI_DIR)."""
    from tests.conftest import tiny_idrisi_records

    recs = tiny_idrisi_records()
    for event, split, part in (("flood", "train", recs[:3]), ("quake", "train", recs[3:6]), ("quake", "dev", recs[6:])):
        f = tmp_path / "idrisi" / "lmr" / event / f"{split}.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps(r) + "\n" for r in part))
    monkeypatch.setenv("LMR_IDRISI_DIR", str(tmp_path / "idrisi"))
    args = ["run", "--train", "idrisi:lmr/train", "--eval", "idrisi:lmr/dev", "--encoder", "offline"]
    args += ["--max-steps", "2", "--eval-steps", "2", "--output-dir", str(tmp_path / "runs")]
    res = CliRunner().invoke(main, [*args, "--registry", str(tmp_path / "reg"), "--name", "ref"])
    assert res.exit_code == 0, res.output
    v1 = tmp_path / "reg" / "ref" / "v1"
    config = json.loads((v1 / "training_config.json").read_text())
    assert config["train"] == ["idrisi:lmr/train"]  # the reference, not this machine's path


def test_checkpoint_average_is_kept_only_when_it_scores_higher(
    tiny_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """Best = trained weights + noise, last = trained weights - noise: their average is the trained model."""
    import torch
    from safetensors.torch import save_file

    from lmr.model.extractor import load_extractor
    from lmr.readers import read_examples
    from trainer.averaging import keep_better_average, last_checkpoint
    from trainer.span_trainer import evaluate_model

    ex = load_extractor(str(tiny_model), runtime="torch")
    model, spec, examples = ex.model, ex.spec, read_examples([tiny_data])
    trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    good, _ = evaluate_model(model, spec, examples)
    assert good["f1"] > 0.3, "the tiny model must find mentions for this test to mean anything"
    gen = torch.Generator().manual_seed(0)
    noise = {k: torch.randn(v.shape, generator=gen) * 0.5 for k, v in trained.items() if v.is_floating_point()}
    for name, sign in (("checkpoint-4", 1), ("checkpoint-12", -1)):
        (tmp_path / name).mkdir()
        save_file(  # as the Trainer writes them: GLiNER's inner network, names without the wrapper's "model."
            {k.removeprefix("model."): (trained[k] + sign * noise[k]).contiguous() for k in noise},
            str(tmp_path / name / "model.safetensors"),
        )
    assert all(k.startswith("model.") for k in noise), "the wrapper's names, unlike the checkpoint's"
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-12", "by step number, not by name"

    model.load_state_dict({k: trained[k] + noise[k] for k in noise}, strict=False)
    noisy, thr = evaluate_model(model, spec, examples)
    assert noisy["f1"] < good["f1"]
    kw = {"best_checkpoint": str(tmp_path / "checkpoint-4"), "run_dir": tmp_path, "threshold": None, "batch_size": 8}
    metrics, _, record = keep_better_average(model, spec, examples, (noisy, thr), **kw)
    assert record["kept"] == "average" and record["average_f1"] > record["best_f1"] == noisy["f1"]
    assert metrics["f1"] == record["average_f1"]
    assert all(torch.allclose(model.state_dict()[k], trained[k], atol=1e-5) for k in noise)

    # now the model is the good one and the average (with the -noise checkpoint) is worse: weights restored
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics, _, record = keep_better_average(model, spec, examples, (metrics, thr), **kw)
    assert record["kept"] == "best" and record["average_f1"] <= record["best_f1"]
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
    # the best checkpoint being the last one: nothing to average
    _, _, record = keep_better_average(
        model, spec, examples, (metrics, thr), **{**kw, "best_checkpoint": str(tmp_path / "checkpoint-12")}
    )
    assert record["kept"] == "best" and "last one" in record["reason"]
