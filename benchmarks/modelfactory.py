"""Build BERT checkpoints with random (or briefly trained) weights, of any shape.

Used by the tests (tiny models that load through the real service code) and by the benchmark
(a bert-base-shaped model: speed depends on shape, not on the weights). Nothing here downloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Shapes by name; bert-base is the published bert-base-uncased shape.
SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    "bert-tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "bert-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}


def write_vocab(out: Path, words: Iterable[str]) -> Path:
    """A WordPiece vocab: specials, the given words, then single characters as fallbacks."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = list(SPECIALS)
    for w in words:
        if w not in vocab:
            vocab.append(w)
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-":
        for piece in (ch, "##" + ch):
            if piece not in vocab:
                vocab.append(piece)
    path = out / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def make_tokenizer(vocab_path: Path) -> Any:
    from transformers import BertTokenizerFast

    # transformers 5: vocab= (not vocab_file=, which is silently ignored)
    return BertTokenizerFast(vocab=str(vocab_path), do_lower_case=True)


def make_checkpoint(out: str | Path, kind: str = "pretraining", shape: str = "tiny", words: Sequence[str] = (),
                    tokenizer_dir: str | Path | None = None, seed: int = 0, num_labels: int = 2,
                    labels: Sequence[str] = ("negative", "positive"), max_position_embeddings: int = 128) -> Path:
    """Write a loadable checkpoint folder (safetensors + tokenizer) with seeded random weights."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForPreTraining, BertForSequenceClassification

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    else:
        tok = make_tokenizer(write_vocab(out, words))
    config = BertConfig(vocab_size=len(tok), max_position_embeddings=max_position_embeddings,
                        pad_token_id=tok.pad_token_id, **SHAPES[shape])
    torch.manual_seed(seed)
    if kind == "pretraining":
        config.architectures = ["BertForPreTraining"]
        model = BertForPreTraining(config)
    else:
        config.num_labels = num_labels
        config.id2label = dict(enumerate(labels))
        config.label2id = {lab: i for i, lab in enumerate(labels)}
        config.architectures = ["BertForSequenceClassification"]
        model = BertForSequenceClassification(config)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def train_briefly(model_dir: str | Path, kind: str, examples: Sequence[Any], steps: int = 60, lr: float = 3e-3,
                  seed: int = 0) -> Path:
    """A few optimizer steps so a tiny model has real, checkable behaviour.

    ``pretraining``: examples are sentences; the MLM learns to fill each of their words.
    ``classifier``: examples are ``(text, label_id)`` pairs.
    """
    import torch
    from transformers import AutoTokenizer, BertForPreTraining, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    cls = BertForPreTraining if kind == "pretraining" else BertForSequenceClassification
    model = cls.from_pretrained(str(model_dir), use_safetensors=True, dtype=torch.float32)  # fp16 checkpoints too
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        if kind == "pretraining":
            enc = tok(list(examples), padding=True, return_tensors="pt")
            ids = enc["input_ids"]
            labels = torch.full_like(ids, -100)
            masked = ids.clone()
            special = (ids == tok.pad_token_id) | (ids == tok.cls_token_id) | (ids == tok.sep_token_id)
            pick = (torch.rand(ids.shape) < 0.3) & ~special
            labels[pick] = ids[pick]
            masked[pick] = tok.mask_token_id
            nsp = torch.zeros(len(examples), dtype=torch.long)
            loss = model(input_ids=masked, attention_mask=enc["attention_mask"], labels=labels,
                         next_sentence_label=nsp).loss
        else:
            texts = [t for t, _ in examples]
            enc = tok(texts, padding=True, return_tensors="pt")
            loss = model(**enc, labels=torch.tensor([y for _, y in examples])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    return Path(model_dir)
