"""Races settled by PostgreSQL: two moderators on one comment, two imports of one export, two likes
by one patient, two operators publishing one episode. PostgreSQL only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clinical_core.domain.errors import Conflict, DomainError
from content.domain.calendar import Platform
from content.domain.exports import ExportKind
from content.domain.lectures import LectureKind
from content.persistence.models import LectureLikeRow, StatImportRow, VideoStatRow
from content.services import calendar as cal
from content.services import lecture_engagement as engage
from content.services import lectures
from content.services import platform_data as data
from opsctl.wiring import Container
from tests.support.clinic import OPS, build_clinic
from tests.support.exports import DOUYIN_VIDEO, xlsx

pytestmark = pytest.mark.slow
TEXT = lectures.LectureInput("高血压的三个误区", "心血管", LectureKind.TEXT, "没有症状也要按时服药，血压平稳后不要自行停药。" * 2)


@pytest.fixture
def container(pg_container: Container) -> Container:
    return pg_container


def race(*calls: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(calls), timeout=30)
    outcomes: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = calls[i]()
        except DomainError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_two_moderators_one_comment(container: Container) -> None:
    c = container
    clinic = build_clinic(c)
    lec = lectures.create_lecture(c.uow(), clinic.doctor_a, TEXT, publish=True).public_id
    comment = engage.add_comment(c.uow(), clinic.patient, lec, "讲得很清楚，谢谢医生").public_id
    for _ in range(3):
        outcomes = race(lambda cid=comment: engage.moderate_comment(c.uow(), OPS, cid, approve=True),
                        lambda cid=comment: engage.moderate_comment(c.uow(), OPS, cid, approve=False, reason="广告"))
        assert sum(isinstance(o, engage.CommentView) for o in outcomes) == 1
        assert sum(isinstance(o, Conflict) for o in outcomes) == 1  # IllegalTransition is a Conflict
        comment = engage.add_comment(c.uow(), clinic.patient, lec, "再来一条评论").public_id


def test_one_patient_liking_twice_at_once_counts_once(container: Container) -> None:
    c = container
    clinic = build_clinic(c)
    lec = lectures.create_lecture(c.uow(), clinic.doctor_a, TEXT, publish=True).public_id
    outcomes = race(*(lambda: engage.like(c.uow(), clinic.patient, lec) for _ in range(3)))
    assert all(isinstance(o, engage.Engagement) for o in outcomes), outcomes
    with c.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(LectureLikeRow)) == 1


def test_the_same_export_imported_twice_at_once_counts_once(container: Container, tmp_path: Path) -> None:
    c = container
    path = xlsx(tmp_path / "抖音.xlsx", DOUYIN_VIDEO, [
        ["高血压的三个误区", "2026-11-03 20:00", "视频", "已通过", "1.2万", "30%", "356", "48", "27", "3", "9", "15"]])
    outcomes = race(lambda: data.import_export(c.uow(), OPS, ExportKind.VIDEO, "douyin", path),
                    lambda: data.import_export(c.uow(), OPS, ExportKind.VIDEO, "douyin", path))
    assert all(isinstance(o, data.ImportResult | Conflict) for o in outcomes), outcomes
    with c.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(StatImportRow)) == 1
        assert u.session.scalar(select(func.count()).select_from(VideoStatRow)) == 1


def test_two_operators_publish_one_post(container: Container) -> None:
    c = container
    clinic = build_clinic(c)
    series = cal.create_series(c.uow(), OPS, "心内科说血压", "心血管内科")
    ep = cal.add_episode(c.uow(), OPS, series.public_id, "高血压的三个误区").public_id
    cal.mark_shot(c.uow(), OPS, ep)
    cal.mark_edited(c.uow(), OPS, ep)
    cal.medical_review(c.uow(), clinic.doctor_a, ep, approve=True)
    post = cal.plan_post(c.uow(), OPS, ep, Platform.DOUYIN, datetime(2026, 11, 3, 12, tzinfo=UTC)).public_id
    outcomes = race(lambda: cal.publish_post(c.uow(), OPS, post), lambda: cal.publish_post(c.uow(), OPS, post))
    assert sum(isinstance(o, cal.PostView) for o in outcomes) == 1
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1


def test_two_operators_announce_one_live_session_and_one_cancels_it(container: Container) -> None:
    """Announcing locks the session row: one push and one group task however many announce at
    once; a cancel racing an announcement leaves no push scheduled for the cancelled stream."""
    from campaigns.persistence.pushes import PushRow
    from clinical_core.domain.errors import RuleViolation
    from content.domain.live import Audience
    from content.persistence.models import LiveAnnouncementRow, LiveSessionRow
    from content.services import live

    c = container
    clinic = build_clinic(c)
    port = c.live_pushes
    group = live.add_group(c.uow(), OPS, "心内科高血压患者群1", "心血管内科", "王护士")
    for round_ in range(3):
        sid = live.schedule(c.uow(), OPS, platform=Platform.DOUYIN, account="深大附院心内科", title="高血压直播答疑",
                            planned_start=datetime(2026, 11, 5 + round_, 12, 0, tzinfo=UTC), minutes=60,
                            plan="一、家庭自测血压的方法；二、常用降压药；三、观众提问答疑",
                            host_staff_id=clinic.doctor_a.staff_id).public_id

        def announce(sid: str = sid) -> object:
            return live.announce(c.uow(), OPS, sid, pushes=port, audience=Audience.ALL, group_ids=(group.public_id,),
                                 send_at=datetime(2026, 11, 4, 2, 0, tzinfo=UTC))

        def counts(sid: str = sid) -> tuple[int, int, list[str]]:
            with c.uow() as u:
                anns = list(u.session.scalars(select(LiveAnnouncementRow).join(
                    LiveSessionRow, LiveSessionRow.id == LiveAnnouncementRow.session_id).where(
                    LiveSessionRow.public_id == sid)))
                refs = [a.push_ref for a in anns if a.push_ref]
                statuses = list(u.session.scalars(select(PushRow.status).where(PushRow.public_id.in_(refs))))
                return len(anns), len(refs), statuses

        assert not any(isinstance(o, DomainError) for o in race(announce, announce, announce))
        assert counts() == (2, 1, ["scheduled"])
        outcomes = race(announce, lambda sid=sid: live.cancel(c.uow(), OPS, sid, "医生临时手术", pushes=port))
        assert outcomes[1] is not None and not isinstance(outcomes[1], DomainError)
        assert outcomes[0] is not None and (not isinstance(outcomes[0], DomainError)
                                            or isinstance(outcomes[0], RuleViolation))  # LIVE-2 after the cancel
        assert counts()[2] == ["cancelled"]  # nothing left to send for the cancelled stream
