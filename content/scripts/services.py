"""Talk-script use cases: write, lint, review, approve, search, render, count use (话术库)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import STAFF_ROLES, Role
from clinical_core.persistence.models import DrugRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from content.scripts.domain import workflow
from content.scripts.domain.compliance import Channel, Finding, Severity, lint
from content.scripts.domain.workflow import Status
from content.scripts.models import ScriptRow, ScriptUsageRow, ScriptVersionRow
from knowledge_base.adapters.index import HybridIndex, IndexItem, rankings
from knowledge_base.adapters.tokens import tokenize
from knowledge_base.domain.ranking import DEFAULT_WEIGHTS, RRF_K, weighted_rrf

AUTHOR_ROLES = frozenset({Role.ADMIN, Role.OPERATIONS})
REVIEWER_ROLES = frozenset({Role.DOCTOR, Role.ADMIN})
USE_ACTIONS = ("copied", "sent")


@dataclass(frozen=True, slots=True)
class NewScript:
    title: str
    channel: str
    specialty: str
    body: str
    tags: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FindingView:
    term: str
    rule: str
    rule_name: str
    source: str
    severity: str


@dataclass(frozen=True, slots=True)
class ScriptView:
    public_id: str
    title: str
    channel: str
    specialty: str
    tags: list[str]
    status: str
    version: int
    approved_version: int | None
    body: str
    alternatives: list[str]
    variables: list[str]
    findings: list[FindingView]
    blocked: bool
    usage_count: int
    reviewer: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ScriptHit:
    rank: int
    public_id: str
    title: str
    channel: str
    specialty: str
    body: str
    variables: list[str]
    usage_count: int
    matched_terms: list[str]
    bm25_rank: int | None
    dense_rank: int | None


def parse_channel(value: str) -> Channel:
    aliases = {"private": Channel.PRIVATE, "community": Channel.COMMUNITY, "moments": Channel.MOMENTS,
               "campaign": Channel.CAMPAIGN}
    try:
        return aliases.get(value) or Channel(value)
    except ValueError:
        raise InvalidInput(f"未知的渠道：{value}（可选 私聊、社群、朋友圈、活动）", field="channel") from None


def _drugs(uow: UnitOfWork) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for generic, trade, rx in uow.session.execute(
            select(DrugRow.generic_name, DrugRow.trade_name, DrugRow.prescription_only).where(DrugRow.active)):
        out[generic] = rx
        if trade:
            out[trade] = rx
    return out


def _lint(uow: UnitOfWork, body: str, title: str, channel: Channel) -> list[Finding]:
    return lint(f"{title}\n{body}", channel, _drugs(uow))


def _finding_dicts(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [{"term": f.term, "rule": f.rule, "rule_name": f.rule_name, "source": f.source,
             "severity": f.severity.value} for f in findings]


def _blocking_count(version: ScriptVersionRow) -> int:
    return sum(1 for f in version.findings if f["severity"] == Severity.BLOCK.value)


def _view(s: ScriptRow, v: ScriptVersionRow) -> ScriptView:
    findings = [FindingView(**f) for f in v.findings]
    return ScriptView(s.public_id, s.title, s.channel, s.specialty, list(s.tags), Status(s.status).label, v.version,
                      s.approved_version, v.body, list(v.alternatives), workflow.check_variables(v.body), findings,
                      any(f.severity == Severity.BLOCK.value for f in findings), s.usage_count, v.reviewer,
                      s.updated_at)


def _load(uow: UnitOfWork, script_id: str, version: int | None = None) -> tuple[ScriptRow, ScriptVersionRow]:
    s = uow.session.scalars(select(ScriptRow).where(ScriptRow.public_id == script_id)).one_or_none()
    if s is None:
        raise NotFound("没有这条话术")
    v = uow.session.scalars(select(ScriptVersionRow).where(
        ScriptVersionRow.script_id == s.id, ScriptVersionRow.version == (version or s.latest_version))).one()
    return s, v


def _clean(new: NewScript) -> NewScript:
    if not new.title.strip() or not new.body.strip():
        raise InvalidInput("话术的标题和正文不能为空", field="body")
    if not new.specialty.strip():
        raise InvalidInput("话术必须注明专科", field="specialty")
    workflow.check_variables(new.body)
    return dataclasses.replace(new, title=new.title.strip(), specialty=new.specialty.strip(),
                               tags=tuple(t.strip() for t in new.tags if t.strip()),
                               alternatives=tuple(a.strip() for a in new.alternatives if a.strip()))


def add_script(uow: UnitOfWork, principal: Principal, new: NewScript) -> ScriptView:
    """Save a draft; the compliance linter runs on every save."""
    ensure_role(principal, AUTHOR_ROLES)
    new = _clean(new)
    channel = parse_channel(new.channel)
    with uow:
        now = uow.clock.now()
        s = ScriptRow(public_id=new_public_id("scr"), title=new.title, channel=channel.value, specialty=new.specialty,
                      tags=list(new.tags), status=Status.DRAFT.value, latest_version=1, approved_version=None,
                      usage_count=0, created_by=principal.actor, created_at=now, updated_at=now)
        uow.session.add(s)
        uow.session.flush()
        v = ScriptVersionRow(script_id=s.id, version=1, body=new.body, alternatives=list(new.alternatives),
                             findings=_finding_dicts(_lint(uow, new.body, new.title, channel)),
                             author=principal.actor, created_at=now)
        uow.session.add(v)
        audit.record(uow, principal.actor, "script.add", "script", s.public_id, version=1,
                     blocking=_blocking_count(v))
        view = _view(s, v)
        uow.commit()
    return view


def edit_script(uow: UnitOfWork, principal: Principal, script_id: str, *, body: str | None = None,
                title: str | None = None, alternatives: Sequence[str] | None = None,
                tags: Sequence[str] | None = None) -> ScriptView:
    """A new version (draft); the approved version keeps serving agents until the new one is approved."""
    ensure_role(principal, AUTHOR_ROLES)
    with uow:
        s, old = _load(uow, script_id)
        new = _clean(NewScript(title or s.title, s.channel, s.specialty, body if body is not None else old.body,
                               tuple(tags if tags is not None else s.tags),
                               tuple(alternatives if alternatives is not None else old.alternatives)))
        status = workflow.edit(Status(s.status), s.public_id)
        _transition(uow, s, Status(s.status), status, latest_version=s.latest_version + 1, title=new.title,
                    tags=list(new.tags))
        v = ScriptVersionRow(script_id=s.id, version=s.latest_version, body=new.body,
                             alternatives=list(new.alternatives),
                             findings=_finding_dicts(_lint(uow, new.body, new.title, Channel(s.channel))),
                             author=principal.actor, created_at=uow.clock.now())
        uow.session.add(v)
        audit.record(uow, principal.actor, "script.edit", "script", s.public_id, version=v.version,
                     blocking=_blocking_count(v))
        view = _view(s, v)
        uow.commit()
    return view


def _transition(uow: UnitOfWork, s: ScriptRow, current: Status, new: Status, **values: Any) -> None:
    """The one place a script's status changes: a conditional UPDATE settles concurrent reviewers."""
    result = uow.session.execute(
        update(ScriptRow).where(ScriptRow.id == s.id, ScriptRow.status == current.value)
        .values(status=new.value, updated_at=uow.clock.now(), **values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict("话术状态已被他人修改，请刷新后重试")
    uow.session.refresh(s)


def submit_for_review(uow: UnitOfWork, principal: Principal, script_id: str) -> ScriptView:
    ensure_role(principal, AUTHOR_ROLES)
    with uow:
        s, v = _load(uow, script_id)
        new = workflow.submit_for_review(Status(s.status), _blocking_count(v), s.public_id)
        _transition(uow, s, Status(s.status), new)
        audit.record(uow, principal.actor, "script.submit", "script", s.public_id, version=v.version)
        view = _view(s, v)
        uow.commit()
    return view


def _reviewer_name(principal: Principal, reviewer: str | None) -> str:
    ensure_role(principal, REVIEWER_ROLES)
    if principal.role is Role.DOCTOR:
        return principal.actor
    if not reviewer or not reviewer.strip():
        raise InvalidInput("管理员代录审核结果时须写明审核医生", field="reviewer")
    return f"{principal.actor} 代 {reviewer.strip()}"


def approve(uow: UnitOfWork, principal: Principal, script_id: str, *, reviewer: str | None = None,
            note: str = "", index: HybridIndex | None = None) -> ScriptView:
    """Medical review passed: this version now serves agents."""
    name = _reviewer_name(principal, reviewer)
    with uow:
        s, v = _load(uow, script_id)
        new = workflow.approve(Status(s.status), _blocking_count(v), s.public_id)
        _transition(uow, s, Status(s.status), new, approved_version=v.version)
        v.reviewer, v.review_note, v.reviewed_at = name, note or None, uow.clock.now()
        audit.record(uow, principal.actor, "script.approve", "script", s.public_id, version=v.version)
        view = _view(s, v)
        uow.commit()
    if index is not None:
        sync_index(uow, index)
    return view


def reject(uow: UnitOfWork, principal: Principal, script_id: str, note: str, *, reviewer: str | None = None) -> ScriptView:
    name = _reviewer_name(principal, reviewer)
    with uow:
        s, v = _load(uow, script_id)
        new = workflow.reject(Status(s.status), note, s.public_id)
        _transition(uow, s, Status(s.status), new)
        v.reviewer, v.review_note, v.reviewed_at = name, note, uow.clock.now()
        audit.record(uow, principal.actor, "script.reject", "script", s.public_id, version=v.version)
        view = _view(s, v)
        uow.commit()
    return view


def retire(uow: UnitOfWork, principal: Principal, script_id: str, index: HybridIndex | None = None) -> ScriptView:
    ensure_role(principal, AUTHOR_ROLES)
    with uow:
        s, v = _load(uow, script_id)
        _transition(uow, s, Status(s.status), workflow.retire(Status(s.status), s.public_id))
        audit.record(uow, principal.actor, "script.retire", "script", s.public_id)
        view = _view(s, v)
        uow.commit()
    if index is not None:
        sync_index(uow, index)
    return view


def list_scripts(uow: UnitOfWork, principal: Principal, *, status: str | None = None, channel: str | None = None,
                 specialty: str | None = None) -> list[ScriptView]:
    ensure_role(principal, STAFF_ROLES)
    with uow:
        q = select(ScriptRow, ScriptVersionRow).join(ScriptVersionRow, (ScriptVersionRow.script_id == ScriptRow.id)
                                                     & (ScriptVersionRow.version == ScriptRow.latest_version))
        if status:
            q = q.where(ScriptRow.status == _status(status).value)
        if channel:
            q = q.where(ScriptRow.channel == parse_channel(channel).value)
        if specialty:
            q = q.where(ScriptRow.specialty == specialty)
        return [_view(s, v) for s, v in uow.session.execute(q.order_by(ScriptRow.id))]


def _status(value: str) -> Status:
    for s in Status:
        if value in (s.value, s.label):
            return s
    raise InvalidInput(f"未知的状态：{value}", field="status")


def _served(uow: UnitOfWork) -> list[tuple[ScriptRow, ScriptVersionRow]]:
    """Only approved versions of scripts that are not retired reach agents."""
    q = (select(ScriptRow, ScriptVersionRow)
         .join(ScriptVersionRow, (ScriptVersionRow.script_id == ScriptRow.id)
               & (ScriptVersionRow.version == ScriptRow.approved_version))
         .where(ScriptRow.approved_version.is_not(None), ScriptRow.status != Status.RETIRED.value)
         .order_by(ScriptRow.id))
    return [(s, v) for s, v in uow.session.execute(q)]


def _search_text(s: ScriptRow, v: ScriptVersionRow) -> str:
    return "\n".join([s.title, *v.alternatives, v.body])


def sync_index(uow: UnitOfWork, index: HybridIndex) -> None:
    with uow:
        items = [IndexItem(f"{s.public_id}:{v.version}", _search_text(s, v), tokenize(_search_text(s, v)))
                 for s, v in _served(uow)]
    index.sync(items)


def search(uow: UnitOfWork, principal: Principal, index: HybridIndex, query: str, *, k: int = 5,
           channel: str | None = None, specialty: str | None = None,
           weights: dict[str, float] | None = None, rrf_k: int = RRF_K) -> list[ScriptHit]:
    """Agents' search: approved scripts only, hybrid BM25 + dense like the knowledge base."""
    ensure_role(principal, STAFF_ROLES)
    if not query.strip():
        raise InvalidInput("检索内容不能为空", field="query")
    import numpy as np

    with uow:
        served = {f"{s.public_id}:{v.version}": (s, v) for s, v in _served(uow)
                  if (not channel or s.channel == parse_channel(channel).value)
                  and (not specialty or s.specialty == specialty)}
        keys = index.keys
        if not keys or not served:
            return []
        mask = np.fromiter((key in served for key in keys), dtype=bool, count=len(keys))
        tokens = tokenize(query)
        r = rankings(index, query, tokens, depth=max(50, k * 5), mask=mask)
        hits: list[ScriptHit] = []
        qset = set(tokens)
        for f in weighted_rrf({"bm25": r.bm25, "dense": r.dense}, weights or DEFAULT_WEIGHTS, rrf_k):
            if f.key not in served:
                continue
            s, v = served[f.key]
            terms = [t for t in dict.fromkeys(tokenize(_search_text(s, v))) if t in qset]
            hits.append(ScriptHit(len(hits) + 1, s.public_id, s.title, s.channel, s.specialty, v.body,
                                  workflow.check_variables(v.body), s.usage_count, terms,
                                  f.ranks.get("bm25"), f.ranks.get("dense")))
            if len(hits) == k:
                break
    return hits


def render_script(uow: UnitOfWork, principal: Principal, script_id: str, variables: dict[str, str]) -> str:
    """The approved text with variables filled in (jinja2 strict: a missing variable is an error)."""
    ensure_role(principal, STAFF_ROLES)
    with uow:
        s = uow.session.scalars(select(ScriptRow).where(ScriptRow.public_id == script_id)).one_or_none()
        if s is None:
            raise NotFound("没有这条话术")
        if s.approved_version is None or s.status == Status.RETIRED.value:
            raise Conflict("这条话术尚未通过审核或已停用，不能使用")
        _, v = _load(uow, script_id, s.approved_version)
        body = v.body
    return render_text(body, variables)


def render_text(body: str, variables: dict[str, str]) -> str:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    try:
        return env.from_string(body).render(**variables)
    except jinja2.UndefinedError:
        missing = [name for name in workflow.check_variables(body) if name not in variables]
        raise InvalidInput(f"缺少变量：{'、'.join(missing) or '未知'}", field="variables") from None
    except jinja2.TemplateSyntaxError:
        raise InvalidInput("话术模板格式错误（变量写法应为 {{医生}}）", field="body") from None


def record_use(uow: UnitOfWork, principal: Principal, script_id: str, action: str) -> int:
    """An agent copied or sent a script; returns the new usage count."""
    ensure_role(principal, STAFF_ROLES)
    if action not in USE_ACTIONS:
        raise InvalidInput("使用方式应为 copied 或 sent", field="action")
    with uow:
        s = uow.session.scalars(select(ScriptRow).where(ScriptRow.public_id == script_id)).one_or_none()
        if s is None or s.approved_version is None or s.status == Status.RETIRED.value:
            raise NotFound("没有可用的这条话术")
        uow.session.add(ScriptUsageRow(script_id=s.id, version=s.approved_version, action=action,
                                       actor=principal.actor, at=uow.clock.now()))
        uow.session.execute(update(ScriptRow).where(ScriptRow.id == s.id)
                            .values(usage_count=ScriptRow.usage_count + 1).execution_options(synchronize_session=False))
        uow.session.refresh(s)
        count = s.usage_count
        uow.commit()
    return count


# -- Excel import / export ---------------------------------------------------
HEADERS = ("标题", "渠道", "专科", "标签", "相似问法", "正文")


@dataclass(frozen=True, slots=True)
class ImportRow:
    row: int
    public_id: str
    title: str
    blocked: bool
    findings: int


def import_xlsx(uow: UnitOfWork, principal: Principal, path: Path) -> list[ImportRow]:
    """Each row becomes a draft (linted on import); a blocked draft cannot be submitted until fixed."""
    from openpyxl import load_workbook

    ensure_role(principal, AUTHOR_ROLES)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - assorted zip/xml errors for a broken file
        raise InvalidInput(f"无法读取 Excel 文件：{path.name}", field="path") from None
    try:
        rows = list(wb.worksheets[0].iter_rows(values_only=True))
    finally:
        wb.close()
    if not rows:
        raise InvalidInput("Excel 文件是空的", field="path")
    header = [str(c or "").strip() for c in rows[0]]
    missing = [h for h in ("标题", "渠道", "专科", "正文") if h not in header]
    if missing:
        raise InvalidInput(f"缺少列：{'、'.join(missing)}（应有 {'、'.join(HEADERS)}）", field="path")
    col = {h: header.index(h) for h in HEADERS if h in header}

    def cell(row: tuple[Any, ...], name: str) -> str:
        i = col.get(name)
        return "" if i is None or i >= len(row) or row[i] is None else str(row[i]).strip()

    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not cell(row, "正文"):
            continue
        try:
            view = add_script(uow, principal, NewScript(
                cell(row, "标题"), cell(row, "渠道"), cell(row, "专科"), cell(row, "正文"),
                tuple(t for t in cell(row, "标签").replace("，", ",").split(",")),
                tuple(a for a in cell(row, "相似问法").replace("\n", "|").split("|"))))
        except InvalidInput as exc:
            raise InvalidInput(f"第 {n} 行：{exc}", field="path") from None
        out.append(ImportRow(n, view.public_id, view.title, view.blocked, len(view.findings)))
    return out


def export_xlsx(uow: UnitOfWork, principal: Principal, path: Path, status: str | None = None) -> int:
    from openpyxl import Workbook

    views = list_scripts(uow, principal, status=status)
    wb = Workbook()
    ws = wb.active
    ws.title = "话术"
    ws.append([*HEADERS, "状态", "版本", "使用次数", "编号"])
    for v in views:
        ws.append([v.title, v.channel, v.specialty, ",".join(v.tags), "|".join(v.alternatives), v.body, v.status,
                   v.version, v.usage_count, v.public_id])
    wb.save(path)
    return len(views)

