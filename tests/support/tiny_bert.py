"""A tiny randomly initialised BERT model folder, in the layout a team would have on
disk (Hugging Face + sentence-transformers files), and its forward pass computed
independently in NumPy from the same weights: the reference the ONNX graph must match."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "keys",
    "rotate",
    "signing",
    "every",
    "ninety",
    "days",
    "worker",
    "lease",
    "job",
    "queue",
    "document",
    "chunk",
    "vector",
    "search",
    "index",
    "retry",
    "dead",
    "letter",
    "cancel",
    "parse",
    "embed",
    "model",
    "token",
    "query",
    "passage",
    "durable",
    "crash",
    "restart",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

Weights = dict[str, NDArray[np.float32]]


def make_tiny_bert(
    folder: Path,
    *,
    seed: int = 0,
    hidden_act: str = "gelu",
    pooling: str | None = None,
    prompts: dict[str, str] | None = None,
    max_seq_length: int | None = None,
    hidden: int = 32,
    heads: int = 4,
    layers: int = 2,
) -> Path:
    """Write config.json, tokenizer.json, model.safetensors and, when asked, the
    sentence-transformers files (pooling mode, prompts, max_seq_length)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate([*SPECIAL, *WORDS])}
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "intermediate_size": hidden * 2,
        "hidden_act": hidden_act,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "vocab_size": len(vocab),
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }
    (folder / "config.json").write_text(json.dumps(config))
    _tokenizer(vocab).save(str(folder / "tokenizer.json"))
    save_file(random_weights(config, seed), str(folder / "model.safetensors"))
    if pooling is not None:
        (folder / "modules.json").write_text(
            json.dumps(
                [
                    {
                        "idx": 0,
                        "name": "0",
                        "path": "",
                        "type": "sentence_transformers.models.Transformer",
                    },
                    {
                        "idx": 1,
                        "name": "1",
                        "path": "1_Pooling",
                        "type": "sentence_transformers.models.Pooling",
                    },
                ]
            )
        )
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {
                    "word_embedding_dimension": hidden,
                    "pooling_mode_cls_token": pooling == "cls",
                    "pooling_mode_mean_tokens": pooling == "mean",
                }
            )
        )
    if prompts is not None:
        (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    if max_seq_length is not None:
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
        )
    return folder


def _tokenizer(vocab: dict[str, int]) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(
        ("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"])
    )
    # As in real model folders: a truncation and fixed padding the model does not use.
    tokenizer.enable_truncation(max_length=8)
    tokenizer.enable_padding(length=8)
    return tokenizer


def random_weights(config: dict[str, Any], seed: int) -> Weights:
    rng = np.random.default_rng(seed)
    h, inner = config["hidden_size"], config["intermediate_size"]

    def w(*shape: int, scale: float = 0.3) -> NDArray[np.float32]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights: Weights = {
        "embeddings.word_embeddings.weight": w(config["vocab_size"], h),
        "embeddings.position_embeddings.weight": w(config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": w(config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": 1 + w(h, scale=0.1),
        "embeddings.LayerNorm.bias": w(h, scale=0.1),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        for name, (out, inp) in {
            "attention.self.query": (h, h),
            "attention.self.key": (h, h),
            "attention.self.value": (h, h),
            "attention.output.dense": (h, h),
            "intermediate.dense": (inner, h),
            "output.dense": (h, inner),
        }.items():
            weights[f"{p}.{name}.weight"] = w(out, inp)
            weights[f"{p}.{name}.bias"] = w(out, scale=0.1)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}.{norm}.weight"] = 1 + w(h, scale=0.1)
            weights[f"{p}.{norm}.bias"] = w(h, scale=0.1)
    return weights


# --- the reference forward pass, plain NumPy in float64 -------------------------------


def reference_embeddings(
    folder: Path, texts: list[str], *, pooling: str, max_length: int
) -> NDArray[np.float64]:
    """BertModel's forward pass per text (no padding at all), pooled, L2-normalised."""
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    weights = {
        k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()
    }
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    rows = []
    for text in texts:
        ids = np.array(tokenizer.encode(text).ids)
        states = _forward(weights, config, ids)
        vector = states[0] if pooling == "cls" else states.mean(axis=0)
        rows.append(vector / np.linalg.norm(vector))
    return np.array(rows)


def _forward(
    weights: dict[str, NDArray[np.float64]], config: dict[str, Any], ids: NDArray[Any]
) -> NDArray[np.float64]:
    eps = config["layer_norm_eps"]
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][: len(ids)]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, weights, "embeddings.LayerNorm", eps)
    heads = config["num_attention_heads"]
    d = config["hidden_size"] // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def linear(v: NDArray[np.float64], name: str) -> NDArray[np.float64]:
            return v @ weights[f"{p}.{name}.weight"].T + weights[f"{p}.{name}.bias"]  # noqa: B023

        q, k, v = (linear(x, f"attention.self.{n}") for n in ("query", "key", "value"))
        context = np.zeros_like(x)
        for head in range(heads):
            cols = slice(head * d, (head + 1) * d)
            scores = q[:, cols] @ k[:, cols].T / math.sqrt(d)
            probs = np.exp(scores - scores.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            context[:, cols] = probs @ v[:, cols]
        x = _layer_norm(
            linear(context, "attention.output.dense") + x,
            weights,
            f"{p}.attention.output.LayerNorm",
            eps,
        )
        inner = _activation(linear(x, "intermediate.dense"), config["hidden_act"])
        x = _layer_norm(linear(inner, "output.dense") + x, weights, f"{p}.output.LayerNorm", eps)
    return x


def _layer_norm(
    x: NDArray[np.float64], weights: dict[str, NDArray[np.float64]], prefix: str, eps: float
) -> NDArray[np.float64]:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weights[f"{prefix}.weight"] + weights[f"{prefix}.bias"]


def _activation(x: NDArray[np.float64], name: str) -> NDArray[np.float64]:
    if name == "relu":
        return np.maximum(x, 0)
    if name == "gelu":
        from math import erf

        return x * 0.5 * (1 + np.vectorize(erf)(x / math.sqrt(2)))
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
