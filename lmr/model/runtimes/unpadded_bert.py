"""A BERT encoder run over the real sub-word tokens of a batch only (``fused``, ``fused-bf16``; exact up to rounding).

The linear layers, which hold nearly all of the encoder's arithmetic, run on the real tokens of a batch,
packed end to end; only attention sees the padded layout. A batch of posts of different lengths then
costs what its tokens cost (padding was ~24% of the positions of the worker's micro-batches).
"""

from __future__ import annotations

from typing import Any

from lmr.model.runtimes.base import frozen_linear


class UnpaddedBert:
    """A BERT encoder's forward pass over the real tokens of a batch only (see the module docstring).

    Embeddings, the fused query/key/value projection, attention output, feed-forward and layer
    norms run on a ``(tokens, hidden)`` matrix; attention runs on the padded ``(batch, heads, length,
    head_dim)`` layout with the padding mask, as in the model. Returned hidden states are zero at
    padded positions, which GLiNER never reads. The token count is rounded up to ``ROWS`` so that
    matrix shapes repeat from batch to batch (oneDNN builds a kernel per new shape, ~12 ms each here).
    """

    ROWS = 32

    def __init__(self, bert: Any, projection: Any = None) -> None:
        import torch

        self.bert = bert
        self.projection = projection
        cfg = bert.config
        self.heads = int(cfg.num_attention_heads)
        self.head_dim = int(cfg.hidden_size) // self.heads
        self.qkv: list[Any] = []
        for layer in bert.encoder.layer:
            sa = layer.attention.self
            w = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight])
            self.qkv.append(frozen_linear(w, torch.cat([sa.query.bias, sa.key.bias, sa.value.bias])))

    @staticmethod
    def supports(encoder: Any) -> bool:
        """Whether ``encoder`` (GLiNER's token encoder) is a plain post-norm BERT this class reproduces."""
        bl = getattr(encoder, "bert_layer", None)
        bert = getattr(bl, "model", None)
        cfg = getattr(bert, "config", None)
        return (
            type(bert).__name__ == "BertModel"
            and not getattr(getattr(bl, "config", None), "fuse_layers", False)
            and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
            and getattr(cfg, "hidden_act", "") == "gelu"
            and not getattr(cfg, "is_decoder", False)
        )

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch.nn.functional as F

        b, length = input_ids.shape
        mask = attention_mask.bool()
        keep = mask.reshape(-1).nonzero().squeeze(1)  # flat positions of the real tokens
        n = int(keep.numel())
        extra = -n % self.ROWS
        emb = self.bert.embeddings
        x = (
            emb.word_embeddings(input_ids.reshape(-1)[keep])
            + emb.position_embeddings(keep % length)  # a token's position is its column
            + emb.token_type_embeddings.weight[0]
        )
        x = F.pad(emb.LayerNorm(x), (0, 0, 0, extra))
        width = x.shape[1]
        key_mask = mask[:, None, None, :]
        for layer, qkv in zip(self.bert.encoder.layer, self.qkv, strict=True):
            padded = x.new_zeros(b * length, 3 * width)
            padded[keep] = qkv(x)[:n]
            q, k, v = padded.view(b, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
            att = F.pad(att.transpose(1, 2).reshape(b * length, width)[keep], (0, 0, 0, extra))
            out = layer.attention.output
            x = out.LayerNorm(out.dense(att) + x)
            x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
        if self.projection is not None:
            x = self.projection(x)
        hidden = x.new_zeros(b * length, x.shape[1])
        hidden[keep] = x[:n]
        return hidden.view(b, length, -1)
