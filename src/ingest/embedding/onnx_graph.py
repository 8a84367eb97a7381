"""A BERT encoder as an ONNX graph, built from `model.safetensors` + `config.json`
in NumPy and written with our own protobuf writer (onnx_proto.py): no PyTorch, and
not even the `onnx` package, at any step.

The graph maps (input_ids, attention_mask, token_type_ids) to the last hidden
state; pooling and normalisation happen in NumPy beside it (onnx_embedder.py), so
one built graph serves every pooling and prefix setting. Built graphs are cached
on disk keyed by the weights' SHA-256, BUILDER_VERSION and the precision. int8 is
dynamic quantisation of the MatMul weights, per output channel (per-tensor int8
loses too much: min cosine 0.87 against fp32, measured), with activations quantised
on the fly: the same nodes and numbers as ONNX Runtime's
`quantize_dynamic(per_channel=True, weight_type=QInt8, op_types_to_quantize=["MatMul"])`
(tests/integration/test_onnx_embedder.py compares the two), built directly so that
onnxruntime's quantiser, which imports `onnx`, is not needed.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ingest.embedding.model_cache import exclusive, write_atomically
from ingest.embedding.onnx_proto import Attribute, DataType, Node, ValueInfo, encode_model
from ingest.errors import ConfigError

log = logging.getLogger(__name__)

# Bump when the graph this module builds changes: cached graphs are keyed by it.
# 2: written without `onnx`, int8 built directly (same numbers as version 1).
BUILDER_VERSION = 2
OPSET = 17
IR_VERSION = 8  # what ONNX Runtime releases of the last years all read
Precision = Literal["fp32", "int8"]
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
# Added to attention scores of padding positions: exp() of it is 0 in float32.
MASK_VALUE = -10000.0
# Symmetric int8 weights use [-127, 127], so that zero is exactly 0 and ranges mirror.
INT8_LIMIT = 127

Weights = dict[str, NDArray[Any]]


def cached_graph(
    weights_path: Path,
    weights_sha256: str,
    config: dict[str, Any],
    precision: Precision,
    cache_dir: Path,
) -> Path:
    """The built graph for these weights and precision: from the cache, or built now
    (once, however many processes start at the same moment)."""
    target = cache_dir / "onnx" / f"{weights_sha256[:16]}-b{BUILDER_VERSION}-{precision}.onnx"
    if target.is_file():
        return target
    with exclusive(target.with_suffix(".lock")):
        if target.is_file():  # another process built it while we waited
            return target
        started = time.monotonic()
        model = build_graph(load_weights(weights_path), config, precision)
        write_atomically(target, lambda tmp: tmp.write_bytes(model))
        log.info("built %s in %.1f s", target.name, time.monotonic() - started)
        _remove_older_builds(target.parent, weights_sha256[:16])
    return target


def _remove_older_builds(folder: Path, weights_key: str) -> None:
    """Graphs of these weights from other builder versions are never read again: an
    upgrade would otherwise leave them (up to 150 MB) in the cache for good. A process
    still running the old version has its graph in memory already."""
    for old in folder.glob(f"{weights_key}-b*-*.onnx"):
        if not old.name.startswith(f"{weights_key}-b{BUILDER_VERSION}-"):
            old.unlink(missing_ok=True)
            old.with_suffix(".lock").unlink(missing_ok=True)


def load_weights(path: Path) -> Weights:
    from safetensors.numpy import load_file

    raw = load_file(str(path))
    # BertModel checkpoints name tensors `embeddings...`; task heads' (BertForX)
    # prefix them with `bert.`. Old TF conversions call LayerNorm's weight/bias gamma/beta.
    weights: Weights = {}
    for name, tensor in raw.items():
        name = name.removeprefix("bert.").replace(".gamma", ".weight").replace(".beta", ".bias")
        weights[name] = tensor
    return weights


def quantize_per_channel(weight: NDArray[Any]) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """Symmetric int8 per output channel (columns of an [in, out] weight), computed as
    ONNX Runtime's quantiser does: scale = max|w| / 127 (in float64, stored float32),
    q = round-half-even(w / scale), zero point 0; an all-zero channel gets scale 1."""
    w = np.ascontiguousarray(weight, dtype=np.float32)
    low = np.minimum(w.min(axis=0), np.float32(0))
    high = np.maximum(w.max(axis=0), np.float32(0))
    absmax = np.maximum(np.abs(low), np.abs(high)).astype(np.float64)
    scale64 = (absmax - (-absmax)) / np.float64(2 * INT8_LIMIT)
    scale = scale64.astype(np.float32)
    scale[scale64 < np.finfo(np.float32).tiny] = np.float32(1.0)
    quantized = np.clip((w / scale).round(), -128, 127).astype(np.int8)
    return quantized, scale


class _Graph:
    """Accumulates nodes and initialisers, naming intermediate values uniquely."""

    def __init__(self, weights: Weights, precision: Precision) -> None:
        self.weights = weights
        self.precision = precision
        self.nodes: list[Node] = []
        self.initializers: list[tuple[str, NDArray[Any]]] = []
        self._count = 0
        self._names: set[str] = set()
        self._quantized_inputs: dict[str, tuple[str, str, str]] = {}
        # Shapes of the hidden states, given to ONNX Runtime so that it fuses each
        # residual Add + LayerNormalization into SkipLayerNormalization (it only does
        # when both inputs' shapes are known to match).
        self.hidden_states: list[ValueInfo] = []

    def hidden(self, name: str, width: int) -> str:
        self.hidden_states.append(ValueInfo(name, DataType.FLOAT, ["batch", "sequence", width]))
        return name

    def constant(self, name: str, value: NDArray[Any]) -> str:
        """An initialiser; a name already given (a shared scalar) is reused."""
        if name not in self._names:
            self._names.add(name)
            self.initializers.append((name, np.ascontiguousarray(value)))
        return name

    def weight(self, name: str, *, transpose: bool = False) -> str:
        if name not in self.weights:
            raise ConfigError(f"model.safetensors has no tensor {name!r}: not a BERT checkpoint?")
        value = self.weights[name].astype(np.float32)
        return self.constant(name, value.T if transpose else value)

    def op(self, op_type: str, *inputs: str, **attrs: Attribute) -> str:
        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        self.nodes.append(Node(op_type, list(inputs), [output], attrs))
        return output

    def linear(self, x: str, prefix: str, scale: float = 1.0) -> str:
        """x @ W.T + b, as PyTorch's Linear; `scale` folds a constant factor into both."""
        w = self.weights[f"{prefix}.weight"].astype(np.float32).T * np.float32(scale)
        b = self.weights[f"{prefix}.bias"].astype(np.float32) * np.float32(scale)
        if self.precision == "int8":
            product = self._int8_matmul(x, f"{prefix}.weight", w)
        else:
            product = self.op("MatMul", x, self.constant(f"{prefix}.weight", w))
        return self.hidden(self.op("Add", product, self.constant(f"{prefix}.bias", b)), w.shape[1])

    def _int8_matmul(self, x: str, name: str, w: NDArray[np.float32]) -> str:
        """x @ w with w int8 per channel and x quantised to uint8 at run time:
        DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul by both scales (ONNX
        Runtime fuses these into one kernel when it loads the graph)."""
        quantized, scale = quantize_per_channel(w)
        w_q = self.constant(f"{name}_quantized", quantized)
        w_scale = self.constant(f"{name}_scale", scale)
        w_zero = self.constant(f"{name}_zero_point", np.zeros(scale.shape, dtype=np.int8))
        if x not in self._quantized_inputs:  # q, k and v share one quantised input
            names = (f"{x}_quantized", f"{x}_scale", f"{x}_zero_point")
            self.nodes.append(Node("DynamicQuantizeLinear", [x], list(names)))
            self._quantized_inputs[x] = names
        x_q, x_scale, x_zero = self._quantized_inputs[x]
        scales = self.op("Mul", x_scale, w_scale)
        integers = self.op("MatMulInteger", x_q, w_q, x_zero, w_zero)
        return self.op("Mul", self.op("Cast", integers, to=int(DataType.FLOAT)), scales)

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        normalised = self.op(
            "LayerNormalization",
            x,
            self.weight(f"{prefix}.weight"),
            self.weight(f"{prefix}.bias"),
            axis=-1,
            epsilon=eps,
        )
        return self.hidden(normalised, len(self.weights[f"{prefix}.weight"]))


def build_graph(weights: Weights, config: dict[str, Any], precision: Precision = "fp32") -> bytes:
    """BertModel's forward pass (eval mode) as a serialised ONNX model."""
    _check_config(config)
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph(weights, precision)
    x = _embeddings(g, eps)
    mask = _attention_bias(g)
    for layer in range(int(config["num_hidden_layers"])):
        x = _encoder_layer(g, x, mask, f"encoder.layer.{layer}", hidden, heads, eps, config)
    g.nodes.append(Node("Identity", [x], ["last_hidden_state"]))

    dims = ["batch", "sequence"]
    inputs = [
        ValueInfo(name, DataType.INT64, dims)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = ValueInfo("last_hidden_state", DataType.FLOAT, [*dims, hidden])
    return encode_model(
        graph_name="bert_encoder",
        nodes=g.nodes,
        initializers=g.initializers,
        inputs=inputs,
        outputs=[output],
        value_info=g.hidden_states,
        ir_version=IR_VERSION,
        opset=OPSET,
        producer="ingest",
    )


def _check_config(config: dict[str, Any]) -> None:
    activation = config.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"hidden_act {activation!r} is not supported ({', '.join(ACTIVATIONS)})")
    position = config.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise ConfigError(f"position_embedding_type {position!r} is not supported (absolute)")


def _embeddings(g: _Graph, eps: float) -> str:
    """word + position + token type embeddings, layer-normalised."""
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    # The first `sequence` rows of the position table (1-D starts/ends: a scalar
    # index here trips an ONNX Runtime graph rewrite).
    length = g.op(
        "Slice",
        g.op("Shape", "input_ids"),
        g.constant("one_1d", np.array([1], dtype=np.int64)),
        g.constant("two_1d", np.array([2], dtype=np.int64)),
    )
    zero = g.constant("zero_1d", np.array([0], dtype=np.int64))
    position_table = g.weight("embeddings.position_embeddings.weight")
    position_vectors = g.op("Slice", position_table, zero, length, zero)
    types = g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids")
    summed = g.op("Add", g.op("Add", words, types), position_vectors)
    return g.layer_norm(summed, "embeddings.LayerNorm", eps)


def _attention_bias(g: _Graph) -> str:
    """[batch, 1, 1, sequence]: 0 where a token is real, MASK_VALUE on padding."""
    mask = g.op("Cast", "attention_mask", to=int(DataType.FLOAT))
    inverted = g.op("Sub", g.constant("one_f", np.array(1.0, dtype=np.float32)), mask)
    bias = g.op("Mul", inverted, g.constant("mask_value", np.array(MASK_VALUE, dtype=np.float32)))
    return g.op("Unsqueeze", bias, g.constant("axes_1_2", np.array([1, 2], dtype=np.int64)))


def _encoder_layer(
    g: _Graph,
    x: str,
    mask: str,
    prefix: str,
    hidden: int,
    heads: int,
    eps: float,
    config: dict[str, Any],
) -> str:
    head_dim = hidden // heads
    split = g.constant(f"{prefix}.split", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge = g.constant(f"{prefix}.merge", np.array([0, 0, hidden], dtype=np.int64))

    def heads_of(value: str, perm: list[int]) -> str:
        return g.op("Transpose", g.op("Reshape", value, split), perm=perm)

    attn = f"{prefix}.attention"
    # 1/sqrt(d) folded into the query projection: the scores come out pre-scaled.
    q = heads_of(g.linear(x, f"{attn}.self.query", 1 / math.sqrt(head_dim)), [0, 2, 1, 3])
    k = heads_of(g.linear(x, f"{attn}.self.key"), [0, 2, 3, 1])
    v = heads_of(g.linear(x, f"{attn}.self.value"), [0, 2, 1, 3])
    probs = g.op("Softmax", g.op("Add", g.op("MatMul", q, k), mask), axis=-1)
    context = g.op("Reshape", g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3]), merge)
    attended = g.layer_norm(
        g.op("Add", g.linear(context, f"{attn}.output.dense"), x), f"{attn}.output.LayerNorm", eps
    )
    inner = _activation(g, g.linear(attended, f"{prefix}.intermediate.dense"), config)
    out = g.op("Add", g.linear(inner, f"{prefix}.output.dense"), attended)
    return g.layer_norm(out, f"{prefix}.output.LayerNorm", eps)


def _activation(g: _Graph, x: str, config: dict[str, Any]) -> str:
    activation = config.get("hidden_act", "gelu")
    if activation == "relu":
        return g.op("Relu", x)
    half = g.constant("half", np.array(0.5, dtype=np.float32))
    one = g.constant("one_f", np.array(1.0, dtype=np.float32))
    if activation == "gelu":  # exact: x * 0.5 * (1 + erf(x / sqrt(2)))
        inv_sqrt2 = g.constant("inv_sqrt2", np.array(1 / math.sqrt(2), dtype=np.float32))
        erf = g.op("Erf", g.op("Mul", x, inv_sqrt2))
        return g.op("Mul", g.op("Mul", x, half), g.op("Add", erf, one))
    # tanh approximation: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))
    cube = g.op("Mul", g.op("Mul", x, x), x)
    inner = g.op(
        "Add", x, g.op("Mul", cube, g.constant("gelu_c", np.array(0.044715, dtype=np.float32)))
    )
    scaled = g.op("Mul", inner, g.constant("gelu_s", np.array(math.sqrt(2 / math.pi), np.float32)))
    return g.op("Mul", g.op("Mul", x, half), g.op("Add", g.op("Tanh", scaled), one))
