"""A tiny randomly initialised sentence-transformers model with the real XLM-R tokenizer (tests run in seconds).

Same architecture family and prompts as the product model (BERT, mean pooling,
normalised, ``query: ``/``passage: ``) but one layer of width 32: good for testing
the tuning machinery, useless for search quality.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge_base.adapters.embedder import model_cache_dir
from knowledge_base.model_build import MODEL_NAME


def build_tiny_model(target: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    source = model_cache_dir() / MODEL_NAME
    if not (source / "tokenizer.json").is_file():
        pytest.fail(f"离线模型未构建：先运行 make setup（{source}）")
    raw = target.parent / f".{target.name}-raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, raw / name)
    torch.manual_seed(6)
    config = BertConfig(vocab_size=250037, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=1)
    BertModel(config, add_pooling_layer=False).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    st = SentenceTransformer(modules=[transformer, Pooling(32, pooling_mode="mean"), Normalize()], device="cpu",
                             prompts={"query": "query: ", "passage": "passage: "})
    st.save(str(target))
    shutil.rmtree(raw)
    return target
