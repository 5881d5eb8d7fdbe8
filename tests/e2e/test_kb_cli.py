"""opsctl kb as a user drives it: ingest, list, search --json, eval on a BEIR folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsctl.cli.main import app
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.kb_model import shared_embedder

pytestmark = pytest.mark.slow


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Container, "embedder", property(lambda self: shared_embedder()))
    runner = CliRunner()

    def invoke(*args: str, expect: int = 0):
        result = runner.invoke(app, list(args), prog_name="opsctl")
        assert result.exit_code == expect, f"{args} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
        return result

    invoke("db", "upgrade")
    return invoke


def test_ingest_list_search(run, tmp_path: Path) -> None:
    doc = tmp_path / "stroke.md"
    doc.write_text("# 脑卒中识别\n\n问：怎么判断家人是不是中风了？\n答：记住“BE FAST”口诀：平衡、眼睛、面部、手臂、言语异常，立即拨打120。\n",
                   encoding="utf-8")
    first = json.loads(run("kb", "ingest", str(doc), "--specialty", "神经内科", "--owner", "赵敏",
                           "--review-by", "2027-01-31", "--json").stdout)
    assert first[0]["added"] == 1 and first[0]["index_size"] == 1
    again = json.loads(run("kb", "ingest", str(doc), "--specialty", "神经内科", "--owner", "赵敏", "--json").stdout)
    assert again[0]["unchanged"] == 1 and again[0]["embedded"] == 0

    (listed,) = json.loads(run("kb", "list", "--json").stdout)
    assert listed["title"] == "脑卒中识别" and listed["specialty"] == "神经内科" and listed["stale"] is False

    hits = json.loads(run("kb", "search", "老人突然嘴歪说话不清楚", "--k", "1", "--json").stdout)
    assert hits[0]["document"] == "脑卒中识别" and "120" in hits[0]["passage"]
    assert set(hits[0]["why"]) >= {"matched_terms", "bm25_rank", "dense_rank", "cosine"}
    table = run("kb", "search", "中风怎么判断").stdout
    assert "脑卒中识别" in table and "匹配原因" in table


def test_eval_on_a_beir_folder(run, tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    corpus = {"d1": "高血压患者可以喝咖啡吗", "d2": "糖尿病饮食注意什么", "d3": "孕妇感冒能吃药吗", "d4": "儿童发烧怎么退烧"}
    queries = {"q1": "血压高能不能喝咖啡", "q2": "怀孕了感冒吃什么药", "q3": "小孩发高烧如何降温"}
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}, ensure_ascii=False) + "\n"
                                               for k, v in corpus.items()), encoding="utf-8")
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}, ensure_ascii=False) + "\n"
                                                for k, v in queries.items()), encoding="utf-8")
    (beir / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td4\t1\n", encoding="utf-8")
    result = json.loads(run("kb", "eval", str(beir), "--json").stdout)
    assert result["queries"] == 3 and result["corpus"] == 4
    assert result["hybrid"]["ndcg@10"] == pytest.approx(1.0) and result["dense"]["recall@1"] == pytest.approx(1.0)
    assert set(result["bm25"]) == {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10"}
    assert not (tmp_path / "var" / "kb_index").exists()  # evaluation never touches the product's index


def test_eval_refuses_a_folder_that_is_not_beir(run, tmp_path: Path) -> None:
    result = run("kb", "eval", str(tmp_path), expect=3)
    assert "BEIR" in result.stderr
