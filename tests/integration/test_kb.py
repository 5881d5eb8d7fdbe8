"""Knowledge base end to end on both databases: ingest, incremental re-ingest, hybrid search, filters, roles."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from clinical_core.domain.access import SYSTEM, Principal
from clinical_core.domain.errors import Forbidden, InvalidInput
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import AuditRow
from knowledge_base.persistence.models import KbChunkRow
from knowledge_base.services import kb
from opsctl.wiring import Container
from tests.support.kb_model import shared_embedder

pytestmark = pytest.mark.slow

AGENT = Principal(account_id="acc_cs", username="cs1", role=Role.CUSTOMER_SERVICE)
HTN = """---
specialty: 心血管内科
type: faq
owner: 王芳
review_by: 2027-06-30
---
# 高血压用药常见问题

## 降压药
问：降压药吃了头晕还能停吗？
答：服用降压药后出现头晕，多与血压下降过快有关。请不要自行停药，先测量血压并联系医生调整剂量。

问：降压药需要终身服用吗？
答：大多数原发性高血压患者需要长期服药，是否减药由医生评估。
"""


@pytest.fixture
def kbc(container: Container) -> Container:
    container.__dict__["embedder"] = shared_embedder()
    return container


def _files(tmp_path: Path) -> Path:
    root = tmp_path / "kbdocs"
    root.mkdir()
    (root / "htn.md").write_text(HTN, encoding="utf-8")
    wb = Workbook()
    wb.active.append(["问题", "答案", "相似问法"])
    wb.active.append(["血糖高可以吃水果吗？", "血糖控制平稳时，可在两餐之间适量吃苹果、柚子等低糖水果。", "糖尿病能吃苹果吗"])
    wb.active.append(["胰岛素要放冰箱吗？", "未开封的胰岛素冷藏保存，开封后室温下可用28天。", ""])
    wb.save(root / "dm.xlsx")
    return root


def test_ingest_search_and_why_it_matched(kbc: Container, tmp_path: Path) -> None:
    root = _files(tmp_path)
    report = kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [root],
                       kb.MetaDefaults(specialty="内分泌科", owner="李强", review_by=date(2026, 10, 1)))
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    assert report.embedded == report.index_size == 4

    hits = kb.search(kbc.uow(), AGENT, kbc.kb_index, "吃了降压药头晕，可以停药吗", k=2, weights=kbc.search_weights)
    top = hits[0]
    assert top.question == "降压药吃了头晕还能停吗？" and top.document == "高血压用药常见问题"
    assert top.specialty == "心血管内科" and not top.stale
    assert "降压药" in top.why.matched_terms and top.why.bm25_rank == 1 and top.why.dense_rank == 1
    assert top.why.cosine is not None and top.why.cosine > 0.8

    # Colloquial, no shared word with the answer: found through the alternative phrasing and the dense model.
    (fruit,) = kb.search(kbc.uow(), AGENT, kbc.kb_index, "糖尿病人能不能吃苹果", k=1)
    assert fruit.question == "血糖高可以吃水果吗？"
    assert fruit.stale  # review-by 2026-10-01 is before the test clock (2026-11-02)

    docs = {d.title: d for d in kb.list_documents(kbc.uow(), AGENT)}
    assert docs["dm"].stale and not docs["高血压用药常见问题"].stale
    assert [d.title for d in kb.list_documents(kbc.uow(), AGENT, stale_only=True)] == ["dm"]


def test_specialty_filter(kbc: Container, tmp_path: Path) -> None:
    kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [_files(tmp_path)], kb.MetaDefaults(specialty="内分泌科", owner="李强"))
    hits = kb.search(kbc.uow(), AGENT, kbc.kb_index, "降压药头晕", k=5, specialty="内分泌科")
    assert hits and all(h.specialty == "内分泌科" for h in hits)
    assert kb.search(kbc.uow(), AGENT, kbc.kb_index, "降压药头晕", k=5, specialty="眼科") == []


def test_reingest_skips_unchanged_files_and_replaces_changed_ones(kbc: Container, tmp_path: Path) -> None:
    root = _files(tmp_path)
    defaults = kb.MetaDefaults(specialty="内分泌科", owner="李强")
    kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [root], defaults)
    again = kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [root], defaults)
    assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 2, 0)

    (root / "htn.md").write_text(HTN.replace("是否减药由医生评估", "血压达标后可在医生指导下减量"), encoding="utf-8")
    changed = kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [root], defaults)
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 1)
    assert changed.index_size == 4 and changed.embedded == 2  # only the changed document's passages are encoded
    with kbc.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(KbChunkRow)) == 4
        assert uow.session.scalar(select(func.count()).where(AuditRow.action == "kb.ingest")) == 3
    (hit,) = kb.search(kbc.uow(), AGENT, kbc.kb_index, "血压达标后能减量吗", k=1)
    assert "减量" in hit.passage


def test_only_editors_ingest_and_queries_are_validated(kbc: Container, tmp_path: Path) -> None:
    with pytest.raises(Forbidden):
        kb.ingest(kbc.uow(), AGENT, kbc.kb_index, [_files(tmp_path)])
    with pytest.raises(InvalidInput, match="专科"):
        (tmp_path / "x.txt").write_text("没有元数据的文档。", encoding="utf-8")
        kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [tmp_path / "x.txt"], kb.MetaDefaults(owner="李强"))
    with pytest.raises(InvalidInput, match="不能为空"):
        kb.search(kbc.uow(), AGENT, kbc.kb_index, "  ")
    with pytest.raises(InvalidInput, match="不支持"):
        (tmp_path / "x.pdf").write_bytes(b"%PDF")
        kb.ingest(kbc.uow(), SYSTEM, kbc.kb_index, [tmp_path / "x.pdf"])
