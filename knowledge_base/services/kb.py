"""Knowledge-base use cases: ingest files, list documents, hybrid search (知识库)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import delete, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import STAFF_ROLES, Role
from clinical_core.domain.time import local_date
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from knowledge_base.adapters.index import HybridIndex, IndexItem, SyncReport, rankings
from knowledge_base.adapters.readers import read_document
from knowledge_base.adapters.tokens import tokenize
from knowledge_base.domain.chunking import Chunk, chunk_sections
from knowledge_base.domain.documents import SUPPORTED_SUFFIXES, DocType, check_supported, is_stale, make_meta
from knowledge_base.domain.ranking import DEFAULT_WEIGHTS, RRF_K, weighted_rrf
from knowledge_base.persistence.models import KbChunkRow, KbDocumentRow

EDITOR_ROLES = frozenset({Role.ADMIN, Role.OPERATIONS})


@dataclass(frozen=True, slots=True)
class MetaDefaults:
    """Metadata for files that do not carry their own (Markdown front matter wins)."""

    specialty: str | None = None
    doc_type: str | None = None
    source: str | None = None
    owner: str | None = None
    review_by: date | None = None


@dataclass(frozen=True, slots=True)
class IngestReport:
    added: int
    updated: int
    unchanged: int
    passages: int  # passages written by this run
    embedded: int  # passages newly encoded by the dense model
    index_size: int


@dataclass(frozen=True, slots=True)
class DocumentView:
    public_id: str
    title: str
    specialty: str
    doc_type: str
    source: str
    owner: str
    review_by: date | None
    stale: bool
    passages: int
    path: str


@dataclass(frozen=True, slots=True)
class Why:
    matched_terms: list[str]
    bm25_rank: int | None
    dense_rank: int | None
    bm25_score: float | None
    cosine: float | None
    fused_score: float


@dataclass(frozen=True, slots=True)
class SearchHit:
    rank: int
    passage_id: str
    passage: str
    heading: str
    question: str
    document_id: str
    document: str
    specialty: str
    stale: bool
    why: Why = field(repr=False)


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                          and not f.name.startswith(("~$", ".")))
        elif p.is_file():
            check_supported(p.name)
            out.append(p)
        else:
            raise InvalidInput(f"文件不存在：{p}", field="path")
    return out


def _date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"复核日期格式应为 YYYY-MM-DD：{value}", field="review_by") from None


def ingest(uow: UnitOfWork, principal: Principal, index: HybridIndex, paths: Sequence[Path],
           defaults: MetaDefaults = MetaDefaults(), *, force: bool = False,
           progress: Callable[[int], None] | None = None) -> IngestReport:
    """Add or refresh documents; files whose checksum is unchanged are skipped; then the index is synced."""
    ensure_role(principal, EDITOR_ROLES)
    files = expand_paths(paths)
    added = updated = unchanged = passages = 0
    with uow:
        now = uow.clock.now()
        for path in files:
            key = str(path.resolve())
            checksum = hashlib.sha256(path.read_bytes()).hexdigest()
            row = uow.session.scalars(select(KbDocumentRow).where(KbDocumentRow.path == key)).one_or_none()
            if row is not None and row.checksum == checksum and not force:
                unchanged += 1
                continue
            parsed = read_document(path)
            fm = parsed.meta
            meta = make_meta(
                str(fm.get("specialty") or defaults.specialty or ""), fm.get("type") or defaults.doc_type,
                fm.get("source") or defaults.source or path.name, str(fm.get("owner") or defaults.owner or ""),
                _date(fm.get("review_by")) or defaults.review_by,
            )
            chunks = chunk_sections(parsed.sections)
            if not chunks:
                raise InvalidInput(f"文档没有可检索的内容：{path.name}", field="path")
            if row is None:
                row = KbDocumentRow(public_id=new_public_id("kbd"), path=key, ingested_at=now)
                uow.session.add(row)
                added += 1
            else:
                uow.session.execute(delete(KbChunkRow).where(KbChunkRow.document_id == row.id))
                updated += 1
            row.title, row.specialty, row.doc_type = parsed.title[:200], meta.specialty, meta.doc_type.value
            row.source, row.owner, row.review_by = meta.source[:200], meta.owner, meta.review_by
            row.checksum, row.chunk_count, row.updated_at = checksum, len(chunks), now
            uow.session.flush()
            uow.session.add_all([_chunk_row(row.id, c) for c in chunks])
            passages += len(chunks)
            audit.record(uow, principal.actor, "kb.ingest", "kb_document", row.public_id,
                         passages=len(chunks), checksum=checksum[:16])
        uow.commit()
    report = sync_index(uow, index, progress) if (added or updated or not index.keys) else None
    return IngestReport(added, updated, unchanged, passages, report.embedded if report else 0,
                        report.total if report else len(index.keys))


def _chunk_row(document_id: int, c: Chunk) -> KbChunkRow:
    return KbChunkRow(public_id=new_public_id("kbp"), document_id=document_id, position=c.position,
                      heading=c.heading[:200], question=c.question, alternatives="\n".join(c.alternatives),
                      text=c.text, tokens=" ".join(tokenize(c.search_text)))


def sync_index(uow: UnitOfWork, index: HybridIndex, progress: Callable[[int], None] | None = None) -> SyncReport:
    """Make the files under the data directory match the passages in the database."""
    with uow:
        rows = uow.session.execute(
            select(KbChunkRow.public_id, KbChunkRow.heading, KbChunkRow.question, KbChunkRow.alternatives,
                   KbChunkRow.text, KbChunkRow.tokens).order_by(KbChunkRow.id)
        ).all()
    items = [IndexItem(r.public_id, Chunk(0, r.text, r.heading, r.question,
                                          tuple(a for a in r.alternatives.split("\n") if a)).search_text,
                       r.tokens.split()) for r in rows]
    return index.sync(items, progress)


def list_documents(uow: UnitOfWork, principal: Principal, specialty: str | None = None,
                   stale_only: bool = False) -> list[DocumentView]:
    ensure_role(principal, STAFF_ROLES)
    with uow:
        today = local_date(uow.clock.now())
        query = select(KbDocumentRow).order_by(KbDocumentRow.specialty, KbDocumentRow.title)
        if specialty:
            query = query.where(KbDocumentRow.specialty == specialty)
        views = [_view(r, today) for r in uow.session.scalars(query)]
    return [v for v in views if v.stale or not stale_only]


def _view(r: KbDocumentRow, today: date) -> DocumentView:
    return DocumentView(r.public_id, r.title, r.specialty, DocType(r.doc_type).label, r.source, r.owner,
                        r.review_by, is_stale(r.review_by, today), r.chunk_count, r.path)


def search(uow: UnitOfWork, principal: Principal, index: HybridIndex, query: str, *, k: int = 5,
           specialty: str | None = None, weights: dict[str, float] | None = None,
           rrf_k: int = RRF_K) -> list[SearchHit]:
    """Hybrid search: BM25 over jieba tokens and dense vectors, fused by weighted reciprocal rank."""
    ensure_role(principal, STAFF_ROLES)
    query = query.strip()
    if not query:
        raise InvalidInput("检索内容不能为空", field="query")
    if not 1 <= k <= 100:
        raise InvalidInput("返回条数应在 1 到 100 之间", field="k")
    weights = weights or DEFAULT_WEIGHTS
    keys = index.keys
    if not keys:
        return []
    import numpy as np

    with uow:
        today = local_date(uow.clock.now())
        mask = None
        if specialty:
            allowed = set(uow.session.scalars(
                select(KbChunkRow.public_id).join(KbDocumentRow, KbChunkRow.document_id == KbDocumentRow.id)
                .where(KbDocumentRow.specialty == specialty)))
            mask = np.fromiter((key in allowed for key in keys), dtype=bool, count=len(keys))
        tokens = tokenize(query)
        r = rankings(index, query, tokens, depth=max(50, k * 5), mask=mask)
        fused = weighted_rrf({"bm25": r.bm25, "dense": r.dense}, weights, rrf_k)[: k * 2]
        rows = {c.public_id: (c, d) for c, d in uow.session.execute(
            select(KbChunkRow, KbDocumentRow).join(KbDocumentRow, KbChunkRow.document_id == KbDocumentRow.id)
            .where(KbChunkRow.public_id.in_([f.key for f in fused])))}
        qset = set(tokens)
        hits: list[SearchHit] = []
        for f in fused:
            if f.key not in rows:
                continue  # index ahead of or behind the database: skip until the next sync
            c, d = rows[f.key]
            matched = [t for t in dict.fromkeys(c.tokens.split()) if t in qset]
            why = Why(matched, f.ranks.get("bm25"), f.ranks.get("dense"), _round(r.bm25_scores.get(f.key)),
                      _round(r.dense_scores.get(f.key)), round(f.score, 5))
            hits.append(SearchHit(len(hits) + 1, c.public_id, c.text, c.heading, c.question, d.public_id, d.title,
                                  d.specialty, is_stale(d.review_by, today), why))
            if len(hits) == k:
                break
    return hits


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


