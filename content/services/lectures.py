"""名医讲堂 use cases: doctors write and publish, operations disable and enable, patients read.

Every change is one transaction with an audit entry; state changes are
conditional UPDATEs on the expected status, so two staff acting at once
cannot both win (the loser gets ``Conflict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from content.adapters import ffmpeg
from content.domain import lectures as rules
from content.domain.lectures import AudioFacts, DoctorTab, LectureContent, LectureKind, LectureStatus
from content.persistence.models import LectureRow, LectureVersionRow

MANAGERS = (Role.OPERATIONS, Role.ADMIN)


@dataclass(frozen=True)
class LectureInput:
    title: str
    category: str
    kind: LectureKind
    body: str = ""
    audio_file: Path | None = None


@dataclass(frozen=True)
class LectureView:
    public_id: str
    title: str
    category: str
    kind: str
    status: str
    author: str
    version: int  # the version shown (latest for staff, published for patients)
    published_version: int | None
    pending_edit: bool
    audio_seconds: float | None
    audio_path: str | None
    body: str
    updated_at: datetime


def check_audio(path: Path) -> AudioFacts:
    """Probe an uploaded audio file (format and duration, LEC-A1) before it is accepted."""
    info = ffmpeg.probe(path)
    if info.audio is None or not info.duration:
        raise InvalidInput(f"{path.name} 中没有可用的音频", field="audio")
    facts = AudioFacts(info.audio.codec, info.duration, path.stat().st_size)
    rules.validate_audio(facts)
    return facts


def _content(data: LectureInput) -> LectureContent:
    audio = check_audio(data.audio_file) if data.kind is LectureKind.AUDIO and data.audio_file else None
    return rules.validate_content(LectureContent(
        data.title, data.category, data.kind, data.body, str(data.audio_file) if data.audio_file else None, audio))


def _author(uow: UnitOfWork, principal: Principal) -> StaffRow:
    ensure_role(principal, (Role.DOCTOR,))
    staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id)) if principal.staff_id else None
    if staff is None:
        raise Forbidden("当前账号没有关联医生档案，不能发布讲堂")
    return staff


def _version_row(lecture_id: int, number: int, content: LectureContent, principal: Principal,
                 now: datetime) -> LectureVersionRow:
    audio = content.audio
    return LectureVersionRow(
        lecture_id=lecture_id, number=number, title=content.title, category=content.category, body=content.body,
        audio_path=content.audio_path, audio_codec=audio.codec if audio else None,
        audio_millis=round(audio.seconds * 1000) if audio else None, audio_bytes=audio.size_bytes if audio else None,
        created_by=principal.actor, created_at=now,
    )


def _view(uow: UnitOfWork, row: LectureRow, number: int) -> LectureView:
    version = uow.session.scalar(select(LectureVersionRow).where(
        LectureVersionRow.lecture_id == row.id, LectureVersionRow.number == number))
    author = uow.session.get(StaffRow, row.author_staff_id)
    assert version is not None and author is not None
    return LectureView(
        row.public_id, version.title, version.category, row.kind, row.status, author.name, number,
        row.published_version, row.published_version is not None and row.latest_version > row.published_version,
        version.audio_millis / 1000 if version.audio_millis is not None else None, version.audio_path, version.body,
        row.updated_at,
    )


def _load(uow: UnitOfWork, public_id: str) -> LectureRow:
    row = uow.session.scalar(select(LectureRow).where(LectureRow.public_id == public_id))
    if row is None:
        raise NotFound(f"讲堂 {public_id} 不存在")
    return row


def _ensure_author_or_manager(uow: UnitOfWork, principal: Principal, row: LectureRow) -> None:
    if principal.role in MANAGERS:
        return
    if principal.role is Role.DOCTOR and _author(uow, principal).id == row.author_staff_id:
        return
    raise Forbidden("只有作者本人或运营人员可以操作这条讲堂")


def _move(uow: UnitOfWork, row: LectureRow, expected: LectureStatus, new: LectureStatus, **values: object) -> None:
    """The one place a lecture's status is written: conditional on the status we decided from."""
    done = uow.session.execute(
        update(LectureRow).where(LectureRow.id == row.id, LectureRow.status == expected.value,
                                 LectureRow.latest_version == row.latest_version)
        .values(status=new.value, updated_at=uow.clock.now(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise Conflict(f"讲堂 {row.public_id} 刚被其他人修改，请刷新后重试")
    uow.session.expire(row)


def create_lecture(uow: UnitOfWork, principal: Principal, data: LectureInput, *, publish: bool) -> LectureView:
    """新建：发布或存为草稿 (LEC-2)."""
    content = _content(data)
    with uow:
        author = _author(uow, principal)
        now = uow.clock.now()
        row = LectureRow(public_id=new_public_id("lec"), author_staff_id=author.id, category=content.category,
                         kind=content.kind.value, status=LectureStatus.DRAFT.value, latest_version=1,
                         published_version=None, created_at=now, updated_at=now, published_at=None)
        uow.session.add(row)
        uow.session.flush()
        uow.session.add(_version_row(row.id, 1, content, principal, now))
        uow.session.flush()
        audit.record(uow, principal.actor, "lecture.create", "lecture", row.public_id, version=1, kind=row.kind)
        if publish:
            _publish(uow, principal, row)
        view = _view(uow, row, row.latest_version)
        uow.commit()
        return view


def _publish(uow: UnitOfWork, principal: Principal, row: LectureRow) -> None:
    status = LectureStatus(row.status)
    pending = row.published_version is None or row.latest_version > row.published_version
    new = rules.publish(row.public_id, status, pending_edit=pending)
    version = row.latest_version
    _move(uow, row, status, new, published_version=version, published_at=uow.clock.now())
    audit.record(uow, principal.actor, "lecture.publish", "lecture", row.public_id, version=version)


def edit_lecture(uow: UnitOfWork, principal: Principal, public_id: str, data: LectureInput, *,
                 publish: bool) -> LectureView:
    """编辑：保存为新版本；``publish`` 时立即重新发布（否则已发布的旧版本继续对患者可见）."""
    content = _content(data)
    with uow:
        row = _load(uow, public_id)
        if _author(uow, principal).id != row.author_staff_id:
            raise Forbidden("只能编辑本人的讲堂")
        if content.kind.value != row.kind:
            raise InvalidInput("不能改变讲堂类型（图文/音频），请新建一条", field="kind")
        number = row.latest_version + 1
        done = uow.session.execute(
            update(LectureRow).where(LectureRow.id == row.id, LectureRow.latest_version == row.latest_version)
            .values(latest_version=number, category=content.category, updated_at=uow.clock.now())
            .execution_options(synchronize_session=False)
        ).rowcount
        if done != 1:
            raise Conflict(f"讲堂 {public_id} 刚被其他人修改，请刷新后重试")
        uow.session.add(_version_row(row.id, number, content, principal, uow.clock.now()))
        uow.session.flush()
        uow.session.expire(row)
        audit.record(uow, principal.actor, "lecture.edit", "lecture", public_id, version=number)
        if publish and row.status != LectureStatus.DISABLED.value:
            _publish(uow, principal, row)
        view = _view(uow, row, row.latest_version)
        uow.commit()
        return view


def publish_lecture(uow: UnitOfWork, principal: Principal, public_id: str) -> LectureView:
    with uow:
        row = _load(uow, public_id)
        _ensure_author_or_manager(uow, principal, row)
        _publish(uow, principal, row)
        view = _view(uow, row, row.latest_version)
        uow.commit()
        return view


def _toggle(uow: UnitOfWork, principal: Principal, public_id: str, action: str) -> LectureView:
    with uow:
        row = _load(uow, public_id)
        _ensure_author_or_manager(uow, principal, row)
        status = LectureStatus(row.status)
        new = rules.disable(public_id, status) if action == "disable" else rules.enable(public_id, status)
        _move(uow, row, status, new)
        audit.record(uow, principal.actor, f"lecture.{action}", "lecture", public_id)
        view = _view(uow, row, row.latest_version)
        uow.commit()
        return view


def disable_lecture(uow: UnitOfWork, principal: Principal, public_id: str) -> LectureView:
    """停用: patients no longer see it; the author and operations still do."""
    return _toggle(uow, principal, public_id, "disable")


def enable_lecture(uow: UnitOfWork, principal: Principal, public_id: str) -> LectureView:
    return _toggle(uow, principal, public_id, "enable")


def list_for_doctor(uow: UnitOfWork, principal: Principal, tab: DoctorTab) -> list[LectureView]:
    """The doctor's own lectures in one tab (已发布 / 草稿)."""
    with uow:
        author = _author(uow, principal)
        rows = uow.session.scalars(select(LectureRow).where(LectureRow.author_staff_id == author.id)
                                   .order_by(LectureRow.updated_at.desc(), LectureRow.id.desc()))
        return [_view(uow, r, r.latest_version) for r in rows
                if rules.in_tab(tab, LectureStatus(r.status),
                                pending_edit=r.published_version is not None and r.latest_version > r.published_version)]


def list_lectures(uow: UnitOfWork, principal: Principal, *, category: str | None = None,
                  status: LectureStatus | None = None, limit: int = 200) -> list[LectureView]:
    """Patients (and anyone not managing) see published lectures as published; managers see all, latest version."""
    manager = principal.role in MANAGERS
    with uow:
        query = select(LectureRow).order_by(LectureRow.updated_at.desc(), LectureRow.id.desc()).limit(limit)
        if not manager:
            query = query.where(LectureRow.status == LectureStatus.PUBLISHED.value)
        elif status is not None:
            query = query.where(LectureRow.status == status.value)
        views = []
        for row in uow.session.scalars(query):
            view = _view(uow, row, row.latest_version if manager else row.published_version or 1)
            if category is None or view.category == category:
                views.append(view)
        return views


def get_lecture(uow: UnitOfWork, principal: Principal, public_id: str) -> LectureView:
    with uow:
        row = _load(uow, public_id)
        if principal.role in MANAGERS or (principal.role is Role.DOCTOR and principal.staff_id and
                                          _author(uow, principal).id == row.author_staff_id):
            return _view(uow, row, row.latest_version)
        if row.status != LectureStatus.PUBLISHED.value or row.published_version is None:
            raise NotFound(f"讲堂 {public_id} 不存在")
        return _view(uow, row, row.published_version)
