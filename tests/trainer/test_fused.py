"""The fused training span head gives GLiNER's own scores, loss and gradients (real model, real batch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import tiny_settings, training_batch


def test_fused_head_matches_gliner(tiny_data: Any) -> None:
    import torch

    from trainer.model import build_fresh, offline_encoder

    torch.manual_seed(0)
    model = build_fresh(offline_encoder(), max_width=5)
    model.eval()  # dropout off: both paths must then agree to float rounding
    with torch.no_grad():  # a head with non-trivial weights (fresh heads start near zero)
        for p in model.model.span_rep_layer.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for labels in (["location"], ["city", "country", "admin"]):
        _compare(model, training_batch(model, tiny_data, labels))


def _compare(model: Any, batch: dict[str, Any]) -> None:
    import torch

    from trainer.fused import fuse_training_head, unfuse

    def run() -> tuple[Any, Any, dict[str, Any]]:
        model.zero_grad()
        out = model.model(**batch)
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return out.logits.detach(), out.loss.detach(), grads

    plain_logits, plain_loss, plain_grads = run()
    fuse_training_head(model)
    fused_logits, fused_loss, fused_grads = run()
    unfuse(model)
    again_logits, _, _ = run()

    valid = batch["span_mask"].bool().view(plain_logits.shape[:3])
    assert torch.allclose(plain_logits[valid], fused_logits[valid], atol=1e-4, rtol=1e-4)
    assert (fused_logits[~valid] <= -1e3).all()
    assert torch.allclose(plain_loss, fused_loss, rtol=1e-4)
    assert plain_grads.keys() == fused_grads.keys() and plain_grads
    total = float(torch.cat([g.flatten() for g in plain_grads.values()]).norm())
    for name, g in plain_grads.items():  # rounding noise only (some grads, e.g. key biases, are ~0 in theory)
        assert float((g - fused_grads[name]).norm()) <= 1e-5 * total, name
    assert torch.equal(again_logits, plain_logits)  # unfuse restores GLiNER's own forward


def test_fused_head_refuses_other_heads() -> None:
    from lmr.errors import ModelError
    from trainer.fused import fuse_training_head

    with pytest.raises(ModelError, match="markerV0"):
        fuse_training_head(object())


def test_bf16_training_on_a_cpu_runs_under_autocast_and_publishes_float32(
    tiny_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``--precision auto`` on a bf16 CPU: the training forward runs in bfloat16, the weights stay float32,
    and the card says which precision ``auto`` resolved to."""
    from safetensors.torch import load_file

    from lmr.model.runtimes.cpu import cpu_has_native_bf16
    from trainer.train import fit, prepare, publish

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bfloat16 (AVX512-BF16 or AMX): --precision bf16 is refused here")
    s = tiny_settings(tmp_path, tiny_data, "bf16", max_steps=2, eval_steps=2, batch_size=4, precision="auto")
    p = prepare(s)
    layer = next(m for m in p.model.model.token_rep_layer.modules() if isinstance(m, torch.nn.Linear))
    seen: list[tuple[bool, torch.dtype]] = []
    hook = layer.register_forward_hook(lambda m, i, o: seen.append((m.training, o.dtype)))
    caplog.set_level(logging.INFO, logger="lmr.trainer")
    try:
        f = fit(p)
    finally:
        hook.remove()
    assert (True, torch.bfloat16) in seen, f"the training forward did not run in bfloat16: {set(seen)}"
    assert "Precision: bf16 (--precision auto, device cpu)" in caplog.text
    published = publish(p, f)
    assert published is not None
    weights = load_file(str(next(published.glob("*.safetensors"))))
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert json.loads((published / "training_config.json").read_text())["precision"] == "auto"
    assert json.loads((published / "card.json").read_text())["training"]["precision"] == "bf16"
