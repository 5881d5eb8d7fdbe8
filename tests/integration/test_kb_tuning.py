"""Domain tuning (`kb model tune`) on a tiny model: held out before tuning, saved under a new name, base untouched.

The real run (multilingual-e5-small on CHIP-STS train pairs) takes minutes and is
recorded in docs/BENCHMARKS.md; here a one-layer model of width 32 runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from clinical_core.domain.errors import Conflict, InvalidInput
from knowledge_base.adapters.embedder import Embedder
from knowledge_base.domain.pairs import Pair, split_held_out
from knowledge_base.services import tuning
from tests.support.tiny_model import build_tiny_model

pytestmark = pytest.mark.slow

# Five question groups × paraphrases, with look-alike negatives (same pattern, another drug or disease).
TOPICS = [("降压药", "高血压"), ("降糖药", "糖尿病"), ("抗病毒药", "乙肝"), ("内分泌药", "乳腺癌"), ("抗逆转录病毒药", "艾滋病")]


def _pairs() -> list[Pair]:
    out = []
    for i, (drug, disease) in enumerate(TOPICS):
        for j, (a, b) in enumerate([("能不能停", "可以停吗"), ("吃了头晕怎么办", "服用后头晕"), ("什么时候吃", "饭前还是饭后吃"),
                                    ("能和酒一起吗", "吃药期间能喝酒吗")]):
            q = f"{disease}患者{drug}{a}（{i}{j}）"
            out.append(Pair(q, f"{disease}的{drug}{b}（{i}{j}）", 1))
            out.append(Pair(q, f"{TOPICS[(i + 1) % 5][1]}的{TOPICS[(i + 1) % 5][0]}{b}（{i}{j}）", 0))
    return out


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny")


@pytest.fixture
def cache(tmp_path: Path, tiny_source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    root = tmp_path / "models"
    shutil.copytree(tiny_source, root / "tiny")
    monkeypatch.setenv("OPSCTL_MODEL_CACHE", str(root))
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tune_holds_out_groups_first_trains_and_saves_a_new_model(cache: Path) -> None:
    pairs = _pairs()
    base_before = _digest(cache / "tiny" / "model.safetensors")
    options = tuning.TuneOptions(held_out=0.3, seed=3, batch_size=4, learning_rate=1e-3)
    report = tuning.tune_model(pairs, "tiny", "tiny-tuned", options, source="faq.csv")

    tune, held = split_held_out(pairs, 0.3, 3)
    assert (report.tuning_pairs, report.held_out_pairs) == (len(tune), len(held)) and held and tune
    assert report.trained_triples == sum(p.label for p in tune) and report.with_hard_negative == report.trained_triples
    assert report.held_out_queries == len({p.text1 for p in held if p.label})
    assert report.steps >= 1 and set(report.before) == set(report.after) == {"bm25", "dense", "hybrid"}
    assert report.before["bm25"] == report.after["bm25"]  # same held-out set, same code: only the model differs

    assert _digest(cache / "tiny" / "model.safetensors") == base_before  # the base model is never touched
    tuned, base = load_file(cache / "tiny-tuned" / "model.safetensors"), load_file(cache / "tiny" / "model.safetensors")
    changed = [k for k in base if "word_embeddings" not in k and not (tuned[k] == base[k]).all()]
    assert changed, "tuning changed no weight"
    frozen = [k for k in base if "word_embeddings" in k]
    assert frozen and all((tuned[k] == base[k]).all() for k in frozen)

    manifest = json.loads((cache / "tiny-tuned" / tuning.TUNE_MANIFEST).read_text())
    assert manifest["base_model"] == "tiny" and manifest["pairs_source"] == "faq.csv" and "research" in manifest["licence"]
    e = Embedder("tiny-tuned")  # selectable by name, like search.embedding_model
    assert e.encode_queries(["降压药能停吗"]).shape == (1, 32)
    assert e.uses_onnx  # exported like the base model: queries on ONNX Runtime, not torch
    torch_path = Embedder("tiny-tuned", query_backend="torch")
    texts = ["降压药能停吗", "糖尿病 饮食", "孕期可以吃柚子吗？"]
    exact = Embedder("tiny-tuned", query_precision="fp32")
    assert abs(exact.encode_queries(texts) - torch_path.encode_queries(texts)).max() < 1e-5
    assert (e.encode_queries(texts) * torch_path.encode_queries(texts)).sum(1).min() > 0.98  # the int8 graph
    views = {v.name: v for v in tuning.list_models("tiny-tuned")}
    assert views["tiny-tuned"].in_use and views["tiny-tuned"].base_model == "tiny" and not views["tiny"].in_use


def test_tune_never_overwrites_the_base_or_an_existing_model(cache: Path) -> None:
    with pytest.raises(InvalidInput):
        tuning.tune_model(_pairs(), "tiny", "tiny")
    (cache / "taken").mkdir()
    with pytest.raises(Conflict):
        tuning.tune_model(_pairs(), "tiny", "taken")
    with pytest.raises(InvalidInput):
        tuning.tune_model(_pairs(), "tiny", "../escape")


def test_pairs_without_a_held_out_positive_are_refused(cache: Path) -> None:
    with pytest.raises(InvalidInput):
        tuning.tune_model([Pair("甲", "乙", 0), Pair("丙", "丁", 0)], "tiny", "x", tuning.TuneOptions(held_out=0.5))


def test_cli_tune_from_csv_then_list_and_select(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from opsctl.cli.main import app

    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SEARCH__EMBEDDING_MODEL", "tiny")
    monkeypatch.chdir(tmp_path)
    pairs = tmp_path / "faq_pairs.csv"
    pairs.write_text("text1,text2,label\n" + "".join(f"{p.text1},{p.text2},{p.label}\n" for p in _pairs()),
                     encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "model", "tune", "--pairs", str(pairs), "--held-out", "0.3", "--seed", "3",
                                 "--batch-size", "4", "--json"], prog_name="opsctl")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "tiny-tuned-faq_pairs" and report["base_model"] == "tiny"
    assert report["before"]["dense"]["ndcg@10"] >= 0 and report["held_out_queries"] > 0
    again = runner.invoke(app, ["kb", "model", "tune", "--pairs", str(pairs), "--json"], prog_name="opsctl")
    assert again.exit_code != 0 and "已存在" in again.stderr  # no silent overwrite

    monkeypatch.setenv("OPSCTL_SEARCH__EMBEDDING_MODEL", "tiny-tuned-faq_pairs")
    listed = json.loads(runner.invoke(app, ["kb", "model", "list", "--json"], prog_name="opsctl").stdout)
    assert {m["name"]: m["in_use"] for m in listed} == {"tiny": False, "tiny-tuned-faq_pairs": True}
    help_text = runner.invoke(app, ["kb", "model", "tune", "--help"], prog_name="opsctl").stdout
    assert "仅限科研" in help_text or "只能用于研究" in help_text
