"""The sentence models as ONNX graphs for onnxruntime, written with the `onnx` package's helper API
from the weights the numpy encoder (memory/encoder.py) loads from model.safetensors: no torch, no
export. The graph also mean-pools: its one output is every layer's mean over the attention mask.

`onnx` and onnxruntime's quantizer are imported inside the functions that use them: only preparing a
graph needs them, and a process that runs a prepared one never loads them."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import numpy as np

from memory.encoder import BertEncoder

OPSET = 17  # LayerNormalization is a standard op from 17 on
# weights quantized in blocks of 32 inputs: blocks of 128 were 20% faster, but a text's vector then differed
# (by up to 0.003 per dimension) between embedding it alone and in a batch (docs/memory.md)
BLOCK = 32
INPUTS = ("input_ids", "attention_mask")
# MPNet's graph takes each (query, key) pair's relative-position bucket as a third input
BUCKETS = "relative_buckets"
OUTPUT = "pooled"  # (batch, layers + 1, hidden): the embeddings' mean, then each layer's


class _Graph:
    """Nodes and initializers under construction, with fresh names for intermediate values."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, name: str = "", **attrs: Any) -> Any:
        """The name of the node's output (or a list of them, when it has several)."""
        from onnx import helper

        self._count += 1
        out = [name] if name else [f"{kind.lower()}_{self._count}_{n}" for n in range(outputs)]
        self.nodes.append(helper.make_node(kind, list(inputs), out, name=out[0], **attrs))
        return out[0] if outputs == 1 else out

    def ints(self, name: str, *values: int) -> str:
        return self.const(name, np.array(values, dtype=np.int64))

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        product = self.op("MatMul", x, self.const(f"{name}.weight", weight), name=f"{name}.matmul")
        return self.op("Add", product, self.const(f"{name}.bias", bias))

    def layer_norm(self, x: str, gamma_beta: tuple[np.ndarray, np.ndarray], eps: float, name: str) -> str:
        gamma, beta = gamma_beta
        return self.op("LayerNormalization", x, self.const(f"{name}.weight", gamma), self.const(f"{name}.bias", beta),
                       axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        # BERT's exact erf form, written so onnxruntime's optimizer fuses it (with the bias before it) into one kernel
        half = self.op("Mul", x, "half")
        erf = self.op("Erf", self.op("Div", x, "sqrt2"))
        return self.op("Mul", half, self.op("Add", erf, "one"))


def build_graph(encoder: BertEncoder) -> Any:
    """The ONNX model of `encoder`'s forward pass and mean pooling (fp32)."""
    from onnx import TensorProto, helper

    g = _Graph()
    g.const("half", np.array(0.5, dtype=np.float32))
    g.const("one", np.array(1.0, dtype=np.float32))
    g.const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    x, bias, weights = _embeddings(g, encoder)
    hidden, heads = encoder.hidden, encoder.heads
    g.ints("heads_shape", 0, 0, heads, hidden // heads)
    g.ints("hidden_shape", 0, 0, hidden)
    g.ints("split3", hidden, hidden, hidden)
    pooled = [_pool(g, x, weights)]
    for i, layer in enumerate(encoder.layers):
        x = _layer(g, x, bias, layer, i, heads, encoder.eps)
        pooled.append(_pool(g, x, weights))
    g.op("Concat", *pooled, axis=1, name=OUTPUT)
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "length"]) for name in INPUTS]
    if getattr(encoder, "relative_bias", None) is not None:
        inputs.append(helper.make_tensor_value_info(BUCKETS, TensorProto.INT64, ["length", "length"]))
    output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", len(encoder.layers) + 1, hidden])
    graph = helper.make_graph(g.nodes, "sentence_encoder", inputs, [output], g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="deputy")
    if len(inputs) > 2:
        helper.set_model_props(model, {"relative_buckets": str(encoder.buckets)})  # type: ignore[attr-defined]
    return model


def quantize(model: Any) -> Any:
    """`model` with each MatMul's weights in 8 bits (blocks of BLOCK along the input, each with its own
    scale and zero point), multiplied on int8 dot products: onnxruntime's MatMulNBits with accuracy
    level 4 quantizes the activations per row and block as well, so a text's vector does not depend
    on the other texts in its batch (docs/memory.md: why this and not quantize_dynamic)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=False, accuracy_level=4, bits=8)
    # it logs a line per node at INFO
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=BLOCK, is_symmetric=False, accuracy_level=4,
                                     algo_config=config)
    quantizer.process()
    return quantizer.model.model


def quantize_mixed(model: Any, kept: tuple[str, ...]) -> Any:
    """`model` with each MatMul's weights in int8 per output channel, multiplied by onnxruntime's
    DynamicQuantizeMatMul (the activations quantized on each call with one scale for the whole matrix):
    about twice as fast as MatMulNBits for one short text, but a text's vector then depends on what
    shares its matrix, so such a graph is run one text at a time. The MatMuls named in `kept` (in every
    layer: "output" is the feed-forward down projection, "attention.output" the attention's) keep
    MatMulNBits (`quantize`): their inputs have the outlier dimensions one scale cannot hold
    (docs/memory.md)."""
    import tempfile
    from pathlib import Path

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = [node.name for node in model.graph.node if node.op_type == "MatMul"
                and node.name.startswith("layer") and node.name.split(".", 1)[-1].removesuffix(".matmul") in kept]
    with _quiet_root_warnings(), tempfile.TemporaryDirectory(prefix="deputy-graph-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save_model(model, str(source), save_as_external_data=True, location="fp32.onnx.data")
        quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         nodes_to_exclude=excluded)
        mixed = onnx.load(str(target))
    return quantize(mixed) if excluded else mixed


@contextlib.contextmanager
def _quiet_root_warnings() -> Iterator[None]:
    """quantize_dynamic advises pre-processing on the root logger: not for the user of `deputy prepare`."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _embeddings(g: _Graph, encoder: BertEncoder) -> tuple[str, str, str]:
    """Token states after the embeddings' LayerNorm, the additive attention bias, and the pooling weights."""
    start = int(getattr(encoder, "first_position", 0))
    positions = encoder.position[start:]
    token_type0 = getattr(encoder, "token_type0", None)
    if token_type0 is not None:  # BERT's token type is always 0: folded into the positions once
        positions = positions + token_type0
    length = g.op("Shape", "input_ids", start=1, end=2)
    position = g.op("Slice", g.const("embeddings.position", positions), g.ints("zero1", 0), length, g.ints("axis0", 0))
    words = g.op("Gather", g.const("embeddings.word", encoder.word), "input_ids", axis=0)
    x = g.layer_norm(g.op("Add", words, position), encoder.ln, encoder.eps, "embeddings.LayerNorm")
    mask = g.op("Cast", "attention_mask", to=1)  # float
    # padded keys get a large negative score, so softmax gives them ~0 weight
    padded = g.op("Sub", "one", mask)
    bias = g.op("Unsqueeze", g.op("Mul", padded, g.const("minus_big", np.array(-1e9, dtype=np.float32))), g.ints("axes12", 1, 2))
    relative = getattr(encoder, "relative_bias", None)
    if relative is not None:  # (buckets, heads) -> (1, heads, length, length)
        table = g.op("Gather", g.const("encoder.relative_attention_bias", relative), BUCKETS, axis=0)
        bias = g.op("Add", bias, g.op("Unsqueeze", g.op("Transpose", table, perm=[2, 0, 1]), g.ints("axes0", 0)))
    counts = g.op("Max", g.op("ReduceSum", mask, g.ints("axes1", 1), keepdims=1), "one")
    weights = g.op("Unsqueeze", g.op("Div", mask, counts), g.ints("axes_last", -1))
    return x, bias, weights


def _pool(g: _Graph, x: str, weights: str) -> str:
    """The masked mean over tokens, shape (batch, 1, hidden)."""
    return g.op("ReduceSum", g.op("Mul", x, weights), "axes1", keepdims=1)


def _layer(g: _Graph, x: str, bias: str, layer: Any, i: int, heads: int, eps: float) -> str:
    name = f"layer{i}"
    qkv = g.linear(x, layer.qkv_w, layer.qkv_b, f"{name}.qkv")  # the query part already carries 1/sqrt(head_dim)
    q, k, v = (g.op("Reshape", part, "heads_shape") for part in g.op("Split", qkv, "split3", outputs=3, axis=-1))
    scores = g.op("MatMul", g.op("Transpose", q, perm=[0, 2, 1, 3]), g.op("Transpose", k, perm=[0, 2, 3, 1]))
    attention = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("MatMul", attention, g.op("Transpose", v, perm=[0, 2, 1, 3]))
    context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), "hidden_shape")
    attended = g.op("Add", g.linear(context, layer.out_w, layer.out_b, f"{name}.attention.output"), x)
    attended = g.layer_norm(attended, layer.ln1, eps, f"{name}.attention.LayerNorm")
    up = g.gelu(g.linear(attended, layer.up_w, layer.up_b, f"{name}.intermediate"))
    down = g.op("Add", g.linear(up, layer.down_w, layer.down_b, f"{name}.output"), attended)
    return g.layer_norm(down, layer.ln2, eps, f"{name}.output.LayerNorm")
