"""Publishing calendar, platform statistics import, live sessions and communities on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clinical_core.domain.errors import Conflict, Forbidden, IllegalTransition, RuleViolation
from clinical_core.domain.time import SHANGHAI
from clinical_core.services import audit
from content.domain.calendar import Platform
from content.domain.exports import ExportKind, ExportRejected
from content.persistence.models import CommunityStatRow, LiveStatRow, VideoStatRow
from content.services import calendar as cal
from content.services import live
from content.services import platform_data as data
from opsctl.wiring import Container
from tests.support.clinic import OPS, build_clinic
from tests.support.exports import (
    CHANNELS_VIDEO,
    DOUYIN_LIVE,
    DOUYIN_VIDEO,
    WECOM_GROUPS,
    csv_gbk,
    xlsx,
)

EVENING = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # 20:00 Shanghai


def _published_episode(c: Container, title: str = "高血压的三个误区") -> tuple[str, str, str]:
    clinic = build_clinic(c)
    series = cal.create_series(c.uow(), OPS, "心内科说血压", "心血管内科", "每周一集")
    ep = cal.add_episode(c.uow(), OPS, series.public_id, title)
    cal.mark_shot(c.uow(), OPS, ep.public_id)
    cal.mark_edited(c.uow(), OPS, ep.public_id, "out/ep1.mp4")
    cal.medical_review(c.uow(), clinic.doctor_a, ep.public_id, approve=True)
    douyin = cal.plan_post(c.uow(), OPS, ep.public_id, Platform.DOUYIN, EVENING)
    channels = cal.plan_post(c.uow(), OPS, ep.public_id, Platform.CHANNELS, EVENING + timedelta(days=1))
    cal.publish_post(c.uow(), OPS, douyin.public_id, published_at=EVENING)
    return ep.public_id, douyin.public_id, channels.public_id


def test_episode_goes_through_production_and_medical_review_by_a_doctor(container: Container) -> None:
    c = container
    clinic = build_clinic(c)
    series = cal.create_series(c.uow(), OPS, "心内科说血压", "心血管内科")
    ep = cal.add_episode(c.uow(), OPS, series.public_id, "高血压的三个误区")
    assert cal.add_episode(c.uow(), OPS, series.public_id, "第二集 降压药怎么吃").number == 2
    post = cal.plan_post(c.uow(), OPS, ep.public_id, Platform.DOUYIN, EVENING)
    with pytest.raises(RuleViolation) as caught:
        cal.publish_post(c.uow(), OPS, post.public_id)
    assert caught.value.rule == "CAL-2"
    cal.mark_shot(c.uow(), OPS, ep.public_id)
    cal.mark_edited(c.uow(), OPS, ep.public_id)
    with pytest.raises(RuleViolation) as caught:
        cal.medical_review(c.uow(), OPS, ep.public_id, approve=True)
    assert caught.value.rule == "CAL-1"
    back = cal.medical_review(c.uow(), clinic.doctor_a, ep.public_id, approve=False, note="第 40 秒剂量说法不准确")
    assert (back.status, back.review_note) == ("shot", "第 40 秒剂量说法不准确")
    with pytest.raises(IllegalTransition):
        cal.medical_review(c.uow(), clinic.doctor_a, ep.public_id, approve=True)
    cal.mark_edited(c.uow(), OPS, ep.public_id)
    reviewed = cal.medical_review(c.uow(), clinic.doctor_a, ep.public_id, approve=True)
    assert (reviewed.status, reviewed.reviewer) == ("reviewed", "医生A")
    published = cal.publish_post(c.uow(), OPS, post.public_id)
    assert published.published_at == c.clock.now()
    with pytest.raises(Conflict):
        cal.publish_post(c.uow(), OPS, post.public_id)
    with pytest.raises(RuleViolation) as caught:
        cal.plan_post(c.uow(), OPS, ep.public_id, Platform.DOUYIN, EVENING)
    assert caught.value.rule == "CAL-3"
    with pytest.raises(Forbidden):
        cal.mark_shot(c.uow(), clinic.patient, ep.public_id)
    actions = [e.action for e in audit.list_entries(c.uow(), entity_id=ep.public_id)]
    assert actions.count("episode.edit") == 2 and "episode.send_back" in actions and "episode.publish" in actions
    [view] = [e for e in cal.list_episodes(c.uow(), OPS) if e.public_id == ep.public_id]
    assert view.status == "published" and "抖音 已发布" in view.platforms


def test_calendar_shows_posts_and_live_sessions_per_platform(container: Container) -> None:
    c = container
    _published_episode(c)
    live.schedule(c.uow(), OPS, platform=Platform.DOUYIN, account="深大附院心内科", title="高血压直播答疑",
                  planned_start=EVENING + timedelta(days=2), minutes=60,
                  plan="一、家庭自测血压的方法；二、常用降压药；三、观众提问答疑")
    entries = cal.calendar(c.uow(), OPS, date(2026, 11, 1), date(2026, 12, 1))
    assert [(e.day, e.platform, e.kind, e.state) for e in entries] == [
        (date(2026, 11, 3), "douyin", "video", "已发布"),
        (date(2026, 11, 4), "channels", "video", "计划（已发布）"),
        (date(2026, 11, 5), "douyin", "live", "已排期")]
    assert [e.kind for e in cal.calendar(c.uow(), OPS, date(2026, 11, 1), date(2026, 12, 1),
                                         platform=Platform.CHANNELS)] == ["video"]
    assert cal.calendar(c.uow(), OPS, date(2026, 12, 1), date(2027, 1, 1)) == []


def test_video_statistics_import_is_all_or_nothing_idempotent_and_matched(container: Container, tmp_path: Path) -> None:
    c = container
    _published_episode(c)
    rows = [["高血压的三个误区！#健康科普 #心内科", "2026-11-03 20:00:12", "视频", "已通过", "1.2万", "35%", "356",
             "48", "27", "30", "120", "15"],
            ["医院周末门诊安排", "2026/11/04 09:00", "图文", "已通过", "3,456", "--", "12", "1", "0", "2", "5", "0"]]
    good = xlsx(tmp_path / "抖音作品数据.xlsx", DOUYIN_VIDEO, rows, caption="数据更新时间：2026-11-10")
    bad = xlsx(tmp_path / "bad.xlsx", DOUYIN_VIDEO, rows + [["坏行", "不是日期", "视频", "", "x", "", "1", "1", "1",
                                                             "1", "1", "1"]])
    with pytest.raises(ExportRejected) as caught:
        data.import_export(c.uow(), OPS, ExportKind.VIDEO, "douyin", bad, as_of=date(2026, 11, 10))
    assert caught.value.row_errors == ["第 4 行：「发布时间」的值「不是日期」不是有效的时间",
                                       "第 4 行：「播放量」的值「x」不是有效的数字"]
    with c.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(VideoStatRow)) == 0
    first = data.import_export(c.uow(), OPS, ExportKind.VIDEO, "douyin", good, as_of=date(2026, 11, 10))
    assert (first.rows, first.inserted, first.matched, first.already_imported) == (2, 2, 1, False)
    again = data.import_export(c.uow(), OPS, ExportKind.VIDEO, "douyin", good, as_of=date(2026, 11, 10))
    assert again.already_imported and again.inserted == 0
    rows[0][4] = "1.5万"  # a later export of the same day: updated in place
    later = xlsx(tmp_path / "抖音作品数据2.xlsx", DOUYIN_VIDEO, rows)
    third = data.import_export(c.uow(), OPS, ExportKind.VIDEO, "douyin", later, as_of=date(2026, 11, 10))
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 1)
    with c.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(VideoStatRow)) == 2
    channels = csv_gbk(tmp_path / "视频号.csv", CHANNELS_VIDEO,
                       [["高血压的三个误区 #健康", "2026-11-04 20:00", "8,000", "200", "10", "30", "5", "30%"]])
    assert data.import_export(c.uow(), OPS, ExportKind.VIDEO, "channels", channels,
                              as_of=date(2026, 11, 10)).matched == 0  # not published on Channels yet
    totals = {t.platform: t for t in data.platform_totals(c.uow(), OPS, date(2026, 11, 1), date(2026, 12, 1))}
    assert (totals["douyin"].plays, totals["douyin"].likes, totals["douyin"].followers) == (15000 + 3456, 368, 15)
    assert (totals["douyin"].works, totals["douyin"].matched_works, totals["channels"].plays) == (2, 1, 8000)
    assert [(p.platform, p.posts) for p in data.content_published(c.uow(), OPS, date(2026, 11, 1),
                                                                   date(2026, 12, 1))] == [("douyin", 1)]


def test_live_session_plan_announce_run_and_statistics(container: Container, tmp_path: Path) -> None:
    c = container
    clinic = build_clinic(c)
    group = live.add_group(c.uow(), OPS, "心内科高血压患者群1", "心血管内科", "王护士")
    start = EVENING + timedelta(days=2)
    with pytest.raises(RuleViolation):
        live.schedule(c.uow(), OPS, platform=Platform.DOUYIN, account="深大附院心内科", title="答疑",
                      planned_start=start, minutes=60, plan="太短")
    session = live.schedule(c.uow(), OPS, platform=Platform.DOUYIN, account="深大附院心内科",
                            title="高血压直播答疑", planned_start=start, minutes=60,
                            plan="一、家庭自测血压的方法；二、常用降压药；三、观众提问答疑",
                            host_staff_id=clinic.doctor_a.staff_id)
    port = c.live_pushes
    preview = live.announce(c.uow(), OPS, session.public_id, pushes=port, group_ids=(group.public_id,), dry_run=True)
    assert [a.target_name for a in preview] == ["科室关注者", "心内科高血压患者群1"]
    assert live.get_session(c.uow(), OPS, session.public_id).announcements == 0
    live.announce(c.uow(), OPS, session.public_id, pushes=port, group_ids=(group.public_id,))
    live.announce(c.uow(), OPS, session.public_id, pushes=port, group_ids=(group.public_id,))  # idempotent per target
    assert live.get_session(c.uow(), OPS, session.public_id).announcements == 2
    c.clock.current = start
    live.start(c.uow(), OPS, session.public_id)
    with pytest.raises(RuleViolation):
        live.announce(c.uow(), OPS, session.public_id, pushes=port)
    with pytest.raises(IllegalTransition):
        live.cancel(c.uow(), OPS, session.public_id, "医生临时手术")
    live.end(c.uow(), OPS, session.public_id)
    export = xlsx(tmp_path / "直播数据.xlsx", DOUYIN_LIVE, [
        ["高血压直播答疑", "2026-11-05 20:03", "1小时2分", "2.3万", "3.1万", "1,204", "350", "5.6万", "890", "120", "310"]])
    result = data.import_export(c.uow(), OPS, ExportKind.LIVE, "douyin", export)
    assert (result.inserted, result.matched) == (1, 1)
    view = live.get_session(c.uow(), OPS, session.public_id)
    assert (view.status, view.viewers, view.peak_online) == ("ended", 23000, 1204)
    [totals] = data.live_totals(c.uow(), OPS, date(2026, 11, 1), date(2026, 12, 1))
    assert (totals.sessions, totals.minutes, totals.viewers, totals.followers) == (1, 62, 23000, 310)
    with c.uow() as u:
        assert u.session.scalar(select(LiveStatRow.session_id)) is not None


def test_community_statistics_need_registered_groups(container: Container, tmp_path: Path) -> None:
    c = container
    live.add_group(c.uow(), OPS, "心内科高血压患者群1", "心血管内科", "王护士")
    rows = [["心内科高血压患者群1", "王护士", "2026-11-03", "356", "12", "2", "40", "233"],
            ["心内科高血压患者群1", "王护士", "2026-11-04", "360", "5", "1", "0", "0"]]
    with pytest.raises(ExportRejected) as caught:
        data.import_export(c.uow(), OPS, ExportKind.COMMUNITY, "wecom",
                           csv_gbk(tmp_path / "bad.csv", WECOM_GROUPS, rows + [["糖友群", "李", "2026-11-03", "1",
                                                                                 "1", "0", "0", "0"]]))
    assert caught.value.row_errors == ["第 4 行：社群「糖友群」未登记（先用 opsctl community add 登记）"]
    with c.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(CommunityStatRow)) == 0
    data.import_export(c.uow(), OPS, ExportKind.COMMUNITY, "wecom", csv_gbk(tmp_path / "g.csv", WECOM_GROUPS, rows))
    [t] = data.community_totals(c.uow(), OPS, date(2026, 11, 1), date(2026, 12, 1))
    assert (t.members_end, t.joined, t.left, t.messages, t.active_days) == (360, 17, 3, 233, 1)
    dup = csv_gbk(tmp_path / "dup.csv", WECOM_GROUPS, rows + rows[:1])
    with pytest.raises(ExportRejected, match="错误"):
        data.import_export(c.uow(), OPS, ExportKind.COMMUNITY, "wecom", dup)


def test_only_operations_import_and_read_figures(container: Container, tmp_path: Path) -> None:
    clinic = build_clinic(container)
    with pytest.raises(Forbidden):
        data.import_export(container.uow(), clinic.doctor_a, ExportKind.VIDEO, "douyin", tmp_path / "x.xlsx")
    with pytest.raises(Forbidden):
        data.platform_totals(container.uow(), clinic.patient, date(2026, 11, 1), date(2026, 12, 1))
    assert SHANGHAI  # display zone used by the calendar
