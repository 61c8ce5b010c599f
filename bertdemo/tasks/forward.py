"""Batched forward passes over :class:`Encoded` items: the one place tensors are built.

Heads are applied only where they are needed: the masked-LM head (a vocab-sized projection,
the costliest layer of a small BERT) runs on the requested positions only, not on every token.

Requests of mixed lengths are *packed*: several short items share one row, each with its own
position ids and a block-diagonal attention mask, so the linear layers (most of the compute)
see almost no padding. :func:`plan_batch` picks packing or plain padding by estimated cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bertdemo.batching import Encoded

PACK_WIDTHS = (64, 128, 256, 512)  # row widths tried when packing (plus the longest item's length)
PACK_MIN_SAVING = 0.9  # pack only when it costs at most 90 % of padding


@dataclass(frozen=True)
class Plan:
    """Where each item goes: ``rows[r]`` lists item indices laid end to end in row ``r``."""

    rows: list[list[int]]
    width: int
    packed: bool

    @property
    def computed_tokens(self) -> int:
        return len(self.rows) * self.width


def _first_fit(lengths: Sequence[int], width: int) -> list[list[int]]:
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True):
        for r, space in enumerate(free):
            if lengths[i] <= space:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(width - lengths[i])
    return rows


def _candidate_widths(lengths: Sequence[int], limit: int) -> list[int]:
    """Row widths worth trying: the longest item, the fixed widths, and widths that split the total
    evenly over k rows (plus a little slack, since whole items rarely fill a row exactly)."""
    longest, total = max(lengths), sum(lengths)
    widths = {longest, *(w for w in PACK_WIDTHS if longest < w <= limit)}
    for k in range(1, len(lengths) + 1):
        even = -(-total // k)
        if even <= longest:
            break
        widths.update(w for w in (even, even + longest // 4, even + longest // 2) if w <= limit)
    return sorted(widths)


def plan_batch(lengths: Sequence[int], hidden_size: int = 768, pack: bool = True, limit: int = PACK_WIDTHS[-1]) -> Plan:
    """Padding or packing, whichever the cost model says is cheaper.

    Cost per layer ~ tokens * 12 h^2 (projections and feed-forward) + query-key pairs * 2 h
    (attention), i.e. in units of 2h: tokens * 6h + pairs. ``limit``: the widest row the model reads.
    Widths that split the batch evenly matter for short inputs: 8 sentence pairs of 15-31 tokens fill
    81 % of rows 64 wide but about 95 % of rows as wide as a third of their total.
    """
    longest = max(lengths)
    padded = Plan([[i] for i in range(len(lengths))], longest, False)

    def cost(p: Plan) -> int:
        return p.computed_tokens * 6 * hidden_size + len(p.rows) * p.width * p.width

    best = padded
    if pack and len(lengths) > 1:
        for width in _candidate_widths(lengths, max(limit, longest)):
            cand = Plan(_first_fit(lengths, width), width, True)
            if cost(cand) < cost(best) and cost(cand) <= PACK_MIN_SAVING * cost(padded):
                best = cand
    return best


def _inputs(holder: Any, items: Sequence[Encoded], pack: bool) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Model inputs for ``items`` and, per item, the (row, offset) where its first token sits."""
    import torch

    pad_id = holder.tokenizer.pad_token_id or 0
    config = holder.model.config
    plan = plan_batch([len(it) for it in items], int(getattr(config, "hidden_size", 768)), pack,
                      int(getattr(config, "max_position_embeddings", PACK_WIDTHS[-1])))
    shape = (len(plan.rows), plan.width)
    ids = torch.full(shape, pad_id, dtype=torch.long)
    types = torch.zeros(shape, dtype=torch.long)
    where: list[tuple[int, int]] = [(0, 0)] * len(items)
    segment = torch.zeros(shape, dtype=torch.long)  # 0 = padding, k + 1 = item k
    positions = torch.zeros(shape, dtype=torch.long)
    for r, row in enumerate(plan.rows):
        start = 0
        for i in row:
            it, n = items[i], len(items[i])
            ids[r, start : start + n] = torch.tensor(it.input_ids, dtype=torch.long)
            if it.token_type_ids is not None:
                types[r, start : start + n] = torch.tensor(it.token_type_ids, dtype=torch.long)
            segment[r, start : start + n] = i + 1
            positions[r, start : start + n] = torch.arange(n)
            where[i] = (r, start)
            start += n
    dev = holder.device
    batch = {"input_ids": ids.to(dev), "token_type_ids": types.to(dev)}
    if plan.packed:
        dtype = holder.model.get_input_embeddings().weight.dtype
        same = segment[:, :, None] == segment[:, None, :]
        mask = torch.zeros((shape[0], 1, shape[1], shape[1]), dtype=dtype)
        mask.masked_fill_(~same[:, None], torch.finfo(dtype).min)
        batch.update(attention_mask=mask.to(dev), position_ids=positions.to(dev))
    else:
        batch["attention_mask"] = (segment > 0).long().to(dev)
    return batch, where


def _encode(holder: Any, encoder: Any, items: Sequence[Encoded], pack: bool) -> tuple[Any, list[tuple[int, int]]]:
    batch, where = _inputs(holder, items, pack)
    return encoder(**batch).last_hidden_state, where


def _pooled(encoder: Any, hidden: Any, where: list[tuple[int, int]]) -> Any:
    """BERT's pooler on each item's [CLS] token (wherever packing put it)."""
    import torch

    rows = torch.tensor([r for r, _ in where], device=hidden.device)
    cols = torch.tensor([c for _, c in where], device=hidden.device)
    return encoder.pooler(hidden[rows, cols].unsqueeze(1))


@dataclass(frozen=True)
class TopK:
    """The k likeliest tokens at each position of one item: ``log_probs`` and ``ids``, both (positions, k)."""

    log_probs: Any
    ids: Any


def mlm_log_probs(lm: Any, items: Sequence[Encoded], pack: bool = True) -> list[Any]:
    """Per item: log-softmax over the vocabulary at each of its ``positions``.

    Returns a ``(len(positions), vocab)`` float tensor per item; when the item has ``target_ids``, a
    ``(len(positions),)`` tensor with the log-probabilities of those tokens; when it has ``top_k``, a
    :class:`TopK`. The top-k of every such item of the batch comes from one ``topk`` over all their rows
    (why: a visitor's fill-mask needs 5 of 30,522 numbers per mask; selecting them per request in the
    callers' threads cost more Python time under load than the whole batch's selection here).
    """
    import torch

    with torch.inference_mode():
        hidden, where = _encode(lm, lm.model.bert, items, pack)
        rows = torch.tensor([where[k][0] for k, it in enumerate(items) for _ in it.positions], dtype=torch.long)
        cols = torch.tensor([where[k][1] + p for k, it in enumerate(items) for p in it.positions], dtype=torch.long)
        picked = hidden[rows.to(hidden.device), cols.to(hidden.device)]
        logits = lm.model.cls.predictions(picked).float()
        logp = torch.log_softmax(logits, dim=-1).cpu()
        wanted = [it.top_k for it in items if it.top_k and it.target_ids is None]
        top = logp.topk(min(max(wanted), logp.shape[-1]), dim=-1) if wanted else None
    out: list[Any] = []
    start = 0
    for it in items:
        rows_of_item = slice(start, start + len(it.positions))
        start += len(it.positions)
        if it.target_ids is not None:
            block = logp[rows_of_item].gather(1, torch.tensor(it.target_ids, dtype=torch.long).unsqueeze(1)).squeeze(1)
        elif it.top_k and top is not None:
            k = min(it.top_k, top.values.shape[-1])
            block = TopK(top.values[rows_of_item, :k], top.indices[rows_of_item, :k])
        else:
            block = logp[rows_of_item]
        out.append(block)
    return out


def nsp_probs(lm: Any, items: Sequence[Encoded], pack: bool = True) -> list[float]:
    """Per item (a sentence pair): probability that sentence B follows sentence A."""
    import torch

    with torch.inference_mode():
        hidden, where = _encode(lm, lm.model.bert, items, pack)
        logits = lm.model.cls.seq_relationship(_pooled(lm.model.bert, hidden, where)).float()
        probs = torch.softmax(logits, dim=-1)[:, 0].cpu()  # index 0 = "B is the next sentence"
    return [float(p) for p in probs]


def class_probs(clf: Any, items: Sequence[Encoded], pack: bool = True) -> list[list[float]]:
    """Per item: class probabilities of a sequence classifier, in label-id order."""
    import torch

    model = clf.model
    with torch.inference_mode():
        hidden, where = _encode(clf, model.bert, items, pack)
        logits = model.classifier(model.dropout(_pooled(model.bert, hidden, where))).float()
        probs = torch.softmax(logits, dim=-1).cpu()
    return [row.tolist() for row in probs]


# ---- attention weights --------------------------------------------------------------------------
# transformers 5 picks the attention function per forward from ``config._attn_implementation``
# (``sdpa`` by default), and sdpa returns no weights. Instead of reloading the model as ``eager``
# (a second copy) or switching it globally (every task would run the slower eager kernels), the
# model is switched once to a wrapper of its own implementation: a forward that asks for weights
# (``output_attentions=True``, only the attention task does) runs the eager formula, every other
# forward runs the original function with the original mask, so other tasks' outputs are unchanged.
WEIGHTS_PREFIX = "bertdemo-weights|"


def _eager_with_weights(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, *,
                        scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """A = softmax(Q K^T * scaling + mask), output A V; as transformers' eager BERT attention."""
    import torch

    if attention_mask is not None and attention_mask.dtype == torch.bool:  # sdpa-style mask: True = attend
        additive = torch.zeros(attention_mask.shape, dtype=query.dtype, device=query.device)
        attention_mask = additive.masked_fill(~attention_mask, torch.finfo(query.dtype).min)
    elif attention_mask is not None and attention_mask.dim() != 4:
        attention_mask = None  # a flash-style 2D mask; the attention task never pads (one item per row)
    scale = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def enable_attention_weights(model: Any) -> None:
    """Let ``model`` return attention weights when asked, without changing any other forward (idempotent)."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    config = model.config
    impl = getattr(config, "_attn_implementation", None) or "eager"
    if impl == "eager" or impl.startswith(WEIGHTS_PREFIX):
        return  # eager already returns the weights
    original = ALL_ATTENTION_FUNCTIONS[impl]

    def dispatch(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> tuple[Any, Any]:
        if kwargs.get("output_attentions"):
            kwargs.pop("output_attentions")
            return _eager_with_weights(module, query, key, value, attention_mask, **kwargs)
        return original(module, query, key, value, attention_mask, **kwargs)

    name = WEIGHTS_PREFIX + impl
    ALL_ATTENTION_FUNCTIONS.register(name, dispatch)
    if impl in ALL_MASK_ATTENTION_FUNCTIONS:  # the same masks as before (an unknown name would drop them)
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[impl])
    config._attn_implementation = name


def attention_weights(lm: Any, items: Sequence[Encoded], pack: bool = False) -> list[Any]:
    """Per item: a float32 numpy array (layers, heads, n, n) of attention weights; row i is where token i attends.

    Each item runs alone (no padding, no packing), so every row is a softmax over that item's tokens only.
    """
    import torch

    enable_attention_weights(lm.model)
    out: list[Any] = []
    with torch.inference_mode():
        for it in items:
            ids = torch.tensor([it.input_ids], dtype=torch.long, device=lm.device)
            types = torch.tensor([it.token_type_ids or [0] * len(it)], dtype=torch.long, device=lm.device)
            res = lm.model.bert(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids),
                                output_attentions=True)
            out.append(torch.stack([a[0] for a in res.attentions]).float().cpu().numpy())
    return out
