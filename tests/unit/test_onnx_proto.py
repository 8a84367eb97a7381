"""Our ONNX writer against the `onnx` package (a development dependency only): the
same model must come out byte for byte, and building a graph must not need `onnx`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ingest.embedding.onnx_graph import quantize_per_channel
from ingest.embedding.onnx_proto import DataType, Node, ValueInfo, encode_model
from tests.support.tiny_bert import make_tiny_bert

INITIALIZERS = [
    ("weight", np.arange(12, dtype=np.float32).reshape(3, 4) / 7),
    ("scalar", np.array(-0.5, dtype=np.float32)),
    ("axes", np.array([1, -2], dtype=np.int64)),
    ("quantized", np.array([[-127, 0], [5, 127]], dtype=np.int8)),
    ("zero_point", np.array([0, 200], dtype=np.uint8)),
]


def test_a_model_is_written_as_the_onnx_package_writes_it() -> None:
    ours = encode_model(
        graph_name="g",
        nodes=[
            Node("MatMul", ["x", "weight"], ["y"]),
            Node("LayerNormalization", ["y", "s", "b"], ["z"], {"axis": -1, "epsilon": 1e-12}),
            Node("Transpose", ["z"], ["t"], {"perm": [0, 2, 1]}),
            Node("Cast", ["t"], ["out"], {"to": int(DataType.FLOAT)}),
            Node("DynamicQuantizeLinear", ["out"], ["q", "q_scale", "q_zero"]),
        ],
        initializers=INITIALIZERS,
        inputs=[ValueInfo("x", DataType.INT64, ["batch", "sequence"])],
        outputs=[ValueInfo("out", DataType.FLOAT, ["batch", "sequence", 4])],
        value_info=[ValueInfo("y", DataType.FLOAT, ["batch", "sequence", 4])],
        ir_version=8,
        opset=17,
        producer="ingest",
    )
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "weight"], ["y"]),
            helper.make_node("LayerNormalization", ["y", "s", "b"], ["z"], axis=-1, epsilon=1e-12),
            helper.make_node("Transpose", ["z"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Cast", ["t"], ["out"], to=TensorProto.FLOAT),
            helper.make_node("DynamicQuantizeLinear", ["out"], ["q", "q_scale", "q_zero"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "sequence", 4])],
        [numpy_helper.from_array(value, name) for name, value in INITIALIZERS],
        value_info=[
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", 4])
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ingest"
    )
    model.ir_version = 8
    assert ours == model.SerializeToString()


def test_the_built_encoder_passes_onnxs_full_checker(tmp_path: Path) -> None:
    from ingest.embedding.onnx_graph import build_graph, load_weights

    folder = make_tiny_bert(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    for precision in ("fp32", "int8"):
        model = onnx.load_from_string(
            build_graph(load_weights(folder / "model.safetensors"), config, precision)
        )
        onnx.checker.check_model(model, full_check=True)


def test_per_channel_quantisation_is_symmetric_and_round_trips_within_half_a_step() -> None:
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(16, 5)).astype(np.float32)
    weight[:, 2] = 0.0  # an all-zero channel: scale 1, all zeros
    quantized, scale = quantize_per_channel(weight)
    assert (quantized.dtype, scale.dtype, scale.shape) == (np.int8, np.float32, (5,))
    assert scale[2] == 1.0
    assert not quantized[:, 2].any()
    assert np.abs(quantized).max(axis=0)[[0, 1, 3, 4]].tolist() == [127] * 4
    assert (np.abs(quantized * scale - weight) <= scale / 2 + 1e-7).all()


def test_building_and_running_a_graph_never_imports_onnx(tmp_path: Path) -> None:
    folder = make_tiny_bert(tmp_path / "model")
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        import numpy as np
        import onnxruntime
        from ingest.embedding.onnx_graph import build_graph, load_weights
        folder = Path({str(folder)!r})
        config = json.loads((folder / "config.json").read_text())
        graph = build_graph(load_weights(folder / "model.safetensors"), config, "int8")
        ids = np.array([[2, 5, 6, 3]], dtype=np.int64)
        session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
        feed = dict(input_ids=ids, attention_mask=np.ones_like(ids),
                    token_type_ids=np.zeros_like(ids))
        session.run(None, feed)
        print(sorted(m for m in sys.modules if m == "onnx" or m.startswith("onnx.")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
