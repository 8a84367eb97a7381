"""ONNX's protobuf wire format, for the few messages a built encoder graph needs.

The `onnx` package would do this, but it installs ~31 MB (with ml_dtypes) to write
a handful of message types, and ONNX Runtime checks the graph when it loads it
anyway. Field numbers are those of onnx/onnx.proto; fields are written in field
order, as protobuf's own serialiser does, so the bytes are those `onnx` would write
for the same model (tests/unit/test_onnx_proto.py compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray


class DataType(IntEnum):
    """TensorProto.DataType values used here."""

    FLOAT = 1
    UINT8 = 2
    INT8 = 3
    INT32 = 6
    INT64 = 7


_NUMPY_TYPES = {
    np.dtype(np.float32): DataType.FLOAT,
    np.dtype(np.uint8): DataType.UINT8,
    np.dtype(np.int8): DataType.INT8,
    np.dtype(np.int32): DataType.INT32,
    np.dtype(np.int64): DataType.INT64,
}

# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7

Attribute = int | float | Sequence[int]


@dataclass(frozen=True)
class Node:
    op_type: str
    inputs: Sequence[str]
    outputs: Sequence[str]
    attributes: dict[str, Attribute] = field(default_factory=dict)


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: a tensor of `elem_type` with named or fixed dims."""

    name: str
    elem_type: DataType
    dims: Sequence[str | int]


def encode_model(
    *,
    graph_name: str,
    nodes: Iterable[Node],
    initializers: Iterable[tuple[str, NDArray[Any]]],
    inputs: Iterable[ValueInfo],
    outputs: Iterable[ValueInfo],
    value_info: Iterable[ValueInfo] = (),
    ir_version: int,
    opset: int,
    producer: str,
) -> bytes:
    """A serialised ModelProto (what `onnx.save_model` writes to a file)."""
    graph = b"".join(
        [
            *(_message(1, _node(n)) for n in nodes),
            _string(2, graph_name),
            *(_message(5, _tensor(name, value)) for name, value in initializers),
            *(_message(11, _value_info(v)) for v in inputs),
            *(_message(12, _value_info(v)) for v in outputs),
            *(_message(13, _value_info(v)) for v in value_info),
        ]
    )
    opset_id = _string(1, "") + _int(2, opset)
    return b"".join(
        [
            _int(1, ir_version),
            _string(2, producer),
            _message(7, graph),
            _message(8, opset_id),
        ]
    )


def _node(node: Node) -> bytes:
    return b"".join(
        [
            *(_string(1, name) for name in node.inputs),
            *(_string(2, name) for name in node.outputs),
            _string(4, node.op_type),
            *(_message(5, _attribute(k, v)) for k, v in sorted(node.attributes.items())),
        ]
    )


def _attribute(name: str, value: Attribute) -> bytes:
    if isinstance(value, bool):
        raise TypeError(f"attribute {name}: booleans are not ONNX attributes")
    if isinstance(value, int):
        return _string(1, name) + _int(3, value) + _int(20, _ATTR_INT)
    if isinstance(value, float):
        return _string(1, name) + _key(2, 5) + struct.pack("<f", value) + _int(20, _ATTR_FLOAT)
    return _string(1, name) + b"".join(_int(8, int(v)) for v in value) + _int(20, _ATTR_INTS)


def _tensor(name: str, value: NDArray[Any]) -> bytes:
    value = np.asarray(value, order="C")  # not ascontiguousarray: it makes scalars 1-D
    try:
        data_type = _NUMPY_TYPES[value.dtype]
    except KeyError:
        raise TypeError(f"tensor {name}: dtype {value.dtype} is not supported") from None
    raw = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
    return b"".join(
        [
            *(_int(1, d) for d in value.shape),
            _int(2, data_type),
            _string(8, name),
            _bytes(9, raw),
        ]
    )


def _value_info(info: ValueInfo) -> bytes:
    dims = b"".join(
        _message(1, _string(2, d) if isinstance(d, str) else _int(1, d)) for d in info.dims
    )
    tensor_type = _int(1, info.elem_type) + _message(2, dims)
    return _string(1, info.name) + _message(2, _message(1, tensor_type))


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 fields encode negatives as ten-byte two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field_number: int, wire_type: int) -> bytes:
    return _varint(field_number << 3 | wire_type)


def _int(field_number: int, value: int) -> bytes:
    return _key(field_number, 0) + _varint(value)


def _bytes(field_number: int, data: bytes) -> bytes:
    return _key(field_number, 2) + _varint(len(data)) + data


def _string(field_number: int, text: str) -> bytes:
    return _bytes(field_number, text.encode())


def _message(field_number: int, encoded: bytes) -> bytes:
    return _bytes(field_number, encoded)
