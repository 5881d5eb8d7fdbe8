"""名医讲堂 services on SQLite and PostgreSQL: publish/draft, versions, disable/enable, who sees what, audio checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, Forbidden, IllegalTransition, NotFound, RuleViolation
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.services import accounts, audit
from content.domain.lectures import DoctorTab, LectureKind
from content.persistence.models import LectureVersionRow
from content.services import lectures
from content.services.lectures import LectureInput
from opsctl.wiring import Container
from tests.support.media import ff

ADMIN = Principal("cli:root", "root", Role.ADMIN)
OPS = Principal("acc_ops", "ops", Role.OPERATIONS)
PATIENT = Principal("acc_pat", "pat", Role.PATIENT, patient_id="pat_1")
TEXT = LectureInput("高血压的三个误区", "心血管", LectureKind.TEXT, "没有症状也要按时服药，血压平稳后不要自行停药。" * 2)


def doctor(container: Container, username: str) -> Principal:
    account = accounts.add_staff_account(container.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=Role.DOCTOR, name="李明", title="主任医师", licence_no="110440300001234",
        practising_since=date(2005, 7, 1), filing=FilingStatus.FILED, may_prescribe=True, phone="13700001111"))
    return Principal(account.public_id, username, Role.DOCTOR, staff_id=account.staff_id)


def test_publish_or_draft_tabs_and_what_patients_see(container: Container) -> None:
    dr = doctor(container, "dr.li")
    live = lectures.create_lecture(container.uow(), dr, TEXT, publish=True)
    draft = lectures.create_lecture(container.uow(), dr, TEXT, publish=False)
    assert (live.status, live.published_version, draft.status) == ("published", 1, "draft")
    assert [v.public_id for v in lectures.list_for_doctor(container.uow(), dr, DoctorTab.PUBLISHED)] == [live.public_id]
    assert [v.public_id for v in lectures.list_for_doctor(container.uow(), dr, DoctorTab.DRAFTS)] == [draft.public_id]
    assert [v.public_id for v in lectures.list_lectures(container.uow(), PATIENT)] == [live.public_id]
    with pytest.raises(NotFound):
        lectures.get_lecture(container.uow(), PATIENT, draft.public_id)


def test_edit_keeps_versions_and_patients_see_the_published_one_until_republished(container: Container) -> None:
    dr = doctor(container, "dr.li")
    live = lectures.create_lecture(container.uow(), dr, TEXT, publish=True)
    edited = LectureInput("高血压的三个误区（修订）", "心血管", LectureKind.TEXT, TEXT.body + "每天同一时间服药。")
    after = lectures.edit_lecture(container.uow(), dr, live.public_id, edited, publish=False)
    assert (after.version, after.published_version, after.pending_edit) == (2, 1, True)
    assert lectures.get_lecture(container.uow(), PATIENT, live.public_id).title == "高血压的三个误区"
    assert [v.public_id for v in lectures.list_for_doctor(container.uow(), dr, DoctorTab.DRAFTS)] == [live.public_id]
    lectures.publish_lecture(container.uow(), dr, live.public_id)
    seen = lectures.get_lecture(container.uow(), PATIENT, live.public_id)
    assert (seen.title, seen.version) == ("高血压的三个误区（修订）", 2)
    with pytest.raises(IllegalTransition):
        lectures.publish_lecture(container.uow(), dr, live.public_id)  # nothing new to publish
    with container.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(LectureVersionRow)) == 2
    actions = [e.action for e in audit.list_entries(container.uow(), entity_id=live.public_id)]
    assert sorted(actions) == ["lecture.create", "lecture.edit", "lecture.publish", "lecture.publish"]


def test_disable_and_enable_by_operations_and_only_by_them_or_the_author(container: Container) -> None:
    dr, other = doctor(container, "dr.li"), doctor(container, "dr.wang")
    live = lectures.create_lecture(container.uow(), dr, TEXT, publish=True)
    with pytest.raises(Forbidden):
        lectures.disable_lecture(container.uow(), other, live.public_id)
    with pytest.raises(Forbidden):
        lectures.disable_lecture(container.uow(), PATIENT, live.public_id)
    assert lectures.disable_lecture(container.uow(), OPS, live.public_id).status == "disabled"
    assert lectures.list_lectures(container.uow(), PATIENT) == []
    assert [v.status for v in lectures.list_lectures(container.uow(), OPS)] == ["disabled"]
    with pytest.raises(IllegalTransition):
        lectures.disable_lecture(container.uow(), OPS, live.public_id)
    assert lectures.enable_lecture(container.uow(), dr, live.public_id).status == "published"
    with pytest.raises(Forbidden):
        lectures.edit_lecture(container.uow(), other, live.public_id, TEXT, publish=True)


def test_a_stale_decision_loses_to_the_database(container: Container) -> None:
    """An operator decides from what they loaded; someone else acts first; the conditional UPDATE refuses."""
    from content.domain.lectures import LectureStatus
    from content.persistence.models import LectureRow

    dr = doctor(container, "dr.li")
    live = lectures.create_lecture(container.uow(), dr, TEXT, publish=True)
    with container.uow() as u:
        stale = u.session.scalar(select(LectureRow).where(LectureRow.public_id == live.public_id))
        assert stale is not None
        u.session.expunge(stale)
    lectures.disable_lecture(container.uow(), OPS, live.public_id)  # meanwhile
    lectures.enable_lecture(container.uow(), OPS, live.public_id)  # published again, with the same status as before
    lectures.edit_lecture(container.uow(), dr, live.public_id, TEXT, publish=False)  # latest_version moved on
    uow = container.uow()
    with uow, pytest.raises(Conflict):
        lectures._move(uow, stale, LectureStatus.PUBLISHED, LectureStatus.DISABLED)
    uow2 = container.uow()
    with uow2:
        fresh = uow2.session.scalar(select(LectureRow).where(LectureRow.public_id == live.public_id))
        assert fresh is not None and fresh.status == "published"


def test_audio_is_probed_on_upload(container: Container, tmp_path: Path) -> None:
    dr = doctor(container, "dr.li")
    good, short, wav = tmp_path / "talk.mp3", tmp_path / "short.mp3", tmp_path / "talk.wav"
    ff("-f", "lavfi", "-i", "sine=f=300:d=12", "-c:a", "libmp3lame", "-b:a", "32k", str(good))
    ff("-f", "lavfi", "-i", "sine=f=300:d=3", "-c:a", "libmp3lame", "-b:a", "32k", str(short))
    ff("-f", "lavfi", "-i", "sine=f=300:d=12", str(wav))
    view = lectures.create_lecture(container.uow(), dr, LectureInput("听医生讲血压", "心血管", LectureKind.AUDIO,
                                                                     audio_file=good), publish=True)
    assert view.audio_seconds == pytest.approx(12, abs=0.2) and view.kind == "audio"
    for bad, words in ((short, "时长"), (wav, "mp3")):
        with pytest.raises(RuleViolation) as caught:
            lectures.create_lecture(container.uow(), dr, LectureInput("听医生讲血压", "心血管", LectureKind.AUDIO,
                                                                      audio_file=bad), publish=False)
        assert words in str(caught.value) and caught.value.rule == "LEC-A1"
