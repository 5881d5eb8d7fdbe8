"""The query encoder as an ONNX graph (BERT + mean pooling + L2 normalisation), run by ONNX Runtime.

    python -m knowledge_base.onnx_export --model var/models/multilingual-e5-small

Writes ``<model>/onnx/query.onnx`` (fp32, the same weights: embeddings equal torch's within 1e-6)
plus ``opsctl-onnx.json`` with the source model's build stamp. ONNX Runtime encodes a single query
about 4x faster than torch on one thread (docs/BENCHMARKS.md); ``Embedder`` uses it for queries when
the file exists and ``search.query_backend = "onnx"`` (the default). sentence-transformers' own ONNX
backend needs optimum, whose pins would downgrade transformers in this venv, so the export is done
here with torch's TorchScript-based exporter.

The graph is exported with transformers' "eager" attention (the plain softmax(QKᵀ)V pattern) and
then rewritten by ONNX Runtime's BERT optimiser (``onnxruntime.transformers.optimizer``), which
fuses each layer's attention, skip + layer norm and bias + GELU into single kernels: the same
fp32 arithmetic (embeddings within 1e-6), fewer passes over memory. A graph whose attention the
optimiser cannot recognise is still correct, only slower; the stamp records the fused operators.

A second graph, ``onnx/query-int8.onnx``, is the fused one with ONNX Runtime's dynamic int8
quantisation (``Embedder(query_precision="int8")``, ``search.query_precision``): weights int8 per
output channel (7-bit range: AVX2 without VNNI multiplies u8 × s8 pairs with ``vpmaddubsw``, whose
16-bit sums saturate at full 8-bit range), activations quantised per tensor at run time, int32
accumulation. Every layer's attention (QKV and output projection) and FFN input projection are
quantised; each FFN output projection stays float32 (``INT8_EXCLUDE``): its input, the GELU
output, carries outlier channels that per-tensor activation scales clip (quantising it too
cost 0.009 nDCG@10 on KUAKE-QQR). Before quantising, each quantised projection's input is
smoothed (SmoothQuant, α = ``SMOOTH_ALPHA``): channel j of the activation is divided by
s_j = max|x_j|^α / max|W_j|^(1−α) (a ``Mul`` node) and row j of the weight multiplied by it — the
same float32 function, with the activations' outlier channels moved into the per-channel weight
scales; max|x_j| is calibrated on ``CALIBRATION`` generated sentences (never eval data). That cuts
the int8 graph's embedding error 3x (mean 1 − cosine 0.0009 → 0.0003) at the same speed
(docs/BENCHMARKS.md, "int8 dynamic quantisation: quality"). Embeddings stay float32.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ONNX_FILE = Path("onnx") / "query.onnx"
INT8_FILE = Path("onnx") / "query-int8.onnx"
STAMP_FILE = Path("onnx") / "opsctl-onnx.json"
FORMAT = 3  # 3: + the int8 graph; 2: eager attention + ONNX Runtime's BERT fusions; 1: the plain export
INT8_EXCLUDE = r"/layer\.\d+/output/dense/MatMul$"  # FFN output projections (node names of torch's export)
SMOOTH_ALPHA = 0.5  # SmoothQuant's migration strength (0.3 and 0.8 measured worse)
CALIBRATION = 300  # generated sentences (model_build.verification_sentences, seed 99) for the activation ranges


def _source_stamp(model_dir: Path) -> str:
    stamp = model_dir / "opsctl-build.json"
    return stamp.read_text() if stamp.is_file() else str((model_dir / "model.safetensors").stat().st_mtime)


def is_exported(model_dir: Path) -> bool:
    stamp = model_dir / STAMP_FILE
    if not ((model_dir / ONNX_FILE).is_file() and (model_dir / INT8_FILE).is_file() and stamp.is_file()):
        return False
    meta = json.loads(stamp.read_text())
    return meta.get("source") == _source_stamp(model_dir) and meta.get("format") == FORMAT


def export(model_dir: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True,
                             model_kwargs={"attn_implementation": "eager"}).eval()
    bert = st[0].auto_model.eval()

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = st.tokenizer(["query: 高血压能吃柚子吗"], return_tensors="pt")
    out = model_dir / ONNX_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with torch.inference_mode():
        torch.onnx.export(_Encoder(), (sample["input_ids"], sample["attention_mask"]), str(tmp),
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "embedding": {0: "batch"}}, opset_version=17, dynamo=False)
    config = st[0].auto_model.config
    fused = _fuse(tmp, config)
    int8_tmp = (model_dir / INT8_FILE).with_suffix(".tmp")
    int8 = quantize_int8(tmp, int8_tmp, int(config.num_hidden_layers), model_dir)
    tmp.replace(out)
    int8_tmp.replace(model_dir / INT8_FILE)
    (model_dir / STAMP_FILE).write_text(json.dumps({"source": _source_stamp(model_dir), "format": FORMAT,
                                                     "fused": fused, "int8": int8}))
    return out


def quantize_int8(source: Path, target: Path, layers: int, model_dir: Path | None = None) -> dict[str, int]:
    """The fused graph, smoothed, with int8 attention and FFN input projections (module docstring);
    returns the count of each quantised and kept-float32 operator. ``model_dir``: the tokenizer for the
    calibration (default: the directory above ``source``)."""
    import re

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    linear = [n for n in model.graph.node if n.op_type in ("MatMul", "Attention")]
    kept = [n.name for n in linear if n.op_type == "MatMul" and re.search(INT8_EXCLUDE, n.name)]
    if len(kept) != layers:  # another exporter's node names: refuse rather than quantise the sensitive layers
        raise RuntimeError(f"expected {layers} FFN output projections to keep in float32, found {len(kept)}")
    weights = {i.name for i in model.graph.initializer}
    smoothed = [n for n in linear if n.name not in kept and n.input[1] in weights]
    _smooth(model, smoothed, model_dir or source.parent.parent)
    smooth_file = target.with_suffix(".smoothed.tmp")
    onnx.save(model, str(smooth_file))
    del model
    try:
        quantize_dynamic(str(smooth_file), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True, op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=kept,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        smooth_file.unlink(missing_ok=True)
    ops: dict[str, int] = {}
    for n in onnx.load(str(target), load_external_data=False).graph.node:
        if n.op_type in ("QAttention", "DynamicQuantizeMatMul", "MatMulInteger", "MatMul", "Attention") or \
                n.name.endswith("/smooth"):
            key = "smooth" if n.name.endswith("/smooth") else n.op_type
            ops[key] = ops.get(key, 0) + 1
    return ops


def _smooth(model: object, nodes: list, model_dir: Path) -> None:
    """SmoothQuant in place: each node's input divided per channel by s, its weight's rows multiplied by s."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from knowledge_base.adapters.embedder import _query_tokenizer
    from knowledge_base.model_build import verification_sentences

    graph = model.graph  # type: ignore[attr-defined]
    inputs = sorted({n.input[0] for n in nodes})
    for name in inputs:  # calibration: each smoothed node's input as an extra output
        graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the named tensors
    session = ort.InferenceSession(model.SerializeToString(), options,  # type: ignore[attr-defined]
                                   providers=["CPUExecutionProvider"])
    del graph.output[len(graph.output) - len(inputs):]
    tokenizer, prompt = _query_tokenizer(model_dir)
    amax: dict[str, Any] = {}
    for text in verification_sentences(CALIBRATION, seed=99):
        e = tokenizer.encode(prompt + text)
        feed = {"input_ids": np.array([e.ids], dtype=np.int64), "attention_mask": np.array([e.attention_mask], dtype=np.int64)}
        for name, x in zip(inputs, session.run(inputs, feed), strict=True):
            m = np.abs(x.reshape(-1, x.shape[-1])).max(0)
            amax[name] = np.maximum(amax[name], m) if name in amax else m
    del session
    initializers = {i.name: i for i in graph.initializer}
    muls = {}
    for n in nodes:
        w = numpy_helper.to_array(initializers[n.input[1]])  # [in, out]
        s = (np.maximum(amax[n.input[0]], 1e-5) ** SMOOTH_ALPHA
             / np.maximum(np.abs(w).max(1), 1e-5) ** (1 - SMOOTH_ALPHA)).astype(np.float32)
        initializers[n.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), n.input[1]))
        graph.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), f"{n.name}/smooth_scale"))
        mul = helper.make_node("Mul", [n.input[0], f"{n.name}/smooth_scale"], [f"{n.name}/smoothed"], name=f"{n.name}/smooth")
        muls[n.name] = mul
        n.input[0] = mul.output[0]
    ordered = []  # each Mul right before its consumer (topological order)
    for n in graph.node:
        if n.name in muls:
            ordered.append(muls[n.name])
        ordered.append(n)
    del graph.node[:]
    graph.node.extend(ordered)


def _fuse(path: Path, config: object) -> dict[str, int]:
    """ONNX Runtime's BERT graph fusions, in place; returns the count of each fused operator."""
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(str(path), model_type="bert", num_heads=int(config.num_attention_heads),
                                     hidden_size=int(config.hidden_size), opt_level=0)
    model.save_model_to_file(str(path))
    return {k: v for k, v in model.get_fused_operator_statistics().items() if v}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    if is_exported(args.model) and not args.force:
        print(f"up to date: {args.model / ONNX_FILE}")
        return 0
    print(f"exported: {export(args.model)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
