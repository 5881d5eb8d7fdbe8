"""Live-stream announcements through the push engine, on SQLite and PostgreSQL, against the
sandbox WeChat server: a push to the session's audience delivered by the ledger's worker, the
sending rules (quiet hours, frequency cap, opt-outs, 4 mass sends a month, dry run), the state
following the push, cancellation and rescheduling (the old time is never sent), the withdraw
job, and the community groups' task list. What reached WeChat is counted from the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.domain import pushes as P
from campaigns.persistence.pushes import DeliveryRow, PushRow
from campaigns.services import delivery, pushes
from campaigns.services.render import make_renderer
from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from clinical_core.persistence.models import (
    DepartmentRow,
    FollowerRow,
    HisVisitRow,
    PatientRow,
)
from content.domain.calendar import Platform
from content.domain.live import Audience
from content.persistence.models import LiveAnnouncementRow
from content.services import live
from opsctl.live_pushes import CampaignAnnouncementPushes
from opsctl.wiring import Container
from tests.support.clinic import OPS, Clinic, build_clinic
from tests.support.pushes import (
    add_followers,
    received_mass,
    received_templates,
    synced_sandbox,
)

RENDER = make_renderer("http://127.0.0.1:8700")
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 Shanghai
START = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)  # Thursday 20:00 Shanghai
PLAN = "一、家庭自测血压的方法；二、常用降压药；三、观众提问答疑"
RULES = pushes.SendingRules()


@pytest.fixture
def wx(container: Container) -> Iterator[tuple[SandboxServer, WeChatPushSender]]:
    container.clock.current = NOW  # type: ignore[attr-defined]
    with synced_sandbox(container) as wx:
        yield wx


def _session(c: Container, clinic: Clinic, start: datetime = START) -> str:
    return live.schedule(c.uow(), OPS, platform=Platform.DOUYIN, account="深大附院心内科", title="高血压直播答疑",
                         planned_start=start, minutes=60, plan=PLAN, host_staff_id=clinic.doctor_a.staff_id).public_id


def _deliver(c: Container, sender: WeChatPushSender, rules: pushes.SendingRules = RULES) -> delivery.WorkerCounts:
    pushes.dispatch_due(c.uow(), c.clock.now(), api=sender, rules=rules)
    return delivery.run_worker(c.uow, sender, RENDER, until_idle=True, sleep=lambda _s: None)


def _followers_of_department(c: Container, server: SandboxServer, clinic: Clinic) -> list[str]:
    """The two test patients follow the account; only 张伟 has a visit in 心血管内科."""
    out = []
    with c.uow() as u:
        card = u.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD"))
        gast = u.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "GAST"))
        for i, (pid, dept) in enumerate(((clinic.patient.patient_id, card), (clinic.other_patient.patient_id, gast))):
            patient = u.session.scalar(select(PatientRow.id).where(PatientRow.public_id == pid))
            openid = f"opat{i}"
            u.session.add(FollowerRow(openid=openid, patient_id=patient, subscribed_at=NOW - timedelta(days=3)))
            u.session.add(HisVisitRow(visit_no=f"V{i}", patient_id=patient, department_id=dept, visit_type="outpatient",
                                      visited_at=NOW - timedelta(days=30), diagnoses=[]))
            out.append(openid)
        u.commit()
    for openid in out:
        server.wechat.user_follows(openid)
    with server.wechat.lock:
        server.wechat.pending_events.clear()
    return out


def _views(c: Container, session_id: str, port: CampaignAnnouncementPushes) -> list[live.AnnouncementView]:
    return live.announcements(c.uow(), OPS, session_id, pushes=port)


def test_an_announcement_is_a_push_delivered_through_the_ledger(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c, (server, sender) = container, wx
    clinic = build_clinic(c)
    port = CampaignAnnouncementPushes()
    openids = add_followers(c, server, 6)
    patients = _followers_of_department(c, server, clinic)
    sid = _session(c, clinic)
    # dry run: the copy and the audience (the department's followers), nothing written
    [preview] = live.announce(c.uow(), OPS, sid, pushes=port, kind="template", dry_run=True)
    assert (preview.state, preview.audience_size, preview.public_id) == ("dry_run", 1, None)
    assert preview.text.startswith("直播预告：11月5日 20:00（周四），医生A医生做客抖音")
    with c.uow() as u:
        assert u.session.scalar(select(func.count()).select_from(PushRow)) == 0
        assert u.session.scalar(select(func.count()).select_from(LiveAnnouncementRow)) == 0
    # the department's followers by template message; the whole account's by a mass send
    [dept] = live.announce(c.uow(), OPS, sid, pushes=port, kind="template")
    assert (dept.state, dept.kind, dept.audience, dept.send_at) == ("scheduled", "template", "department", NOW)
    again = live.announce(c.uow(), OPS, sid, pushes=port, kind="template")  # idempotent per target and time
    assert [a.push_id for a in again] == [dept.push_id]
    _deliver(c, sender)
    assert received_templates(server) == {patients[0]: 1}
    data = server.wechat.template_sent[0]["data"]
    assert (data["keyword1"]["value"], data["keyword2"]["value"], data["keyword3"]["value"]) == (
        "高血压直播答疑", "11月5日 20:00", "抖音")
    [view] = _views(c, sid, port)
    assert (view.state, view.sent, view.failed, view.audience_size) == ("sent", 1, 0, 1)
    assert live.get_session(c.uow(), OPS, sid).announcements == 1
    # a push the operators cancel in `opsctl push` no longer stands: announcing again makes a new one
    sid2 = _session(c, clinic, START + timedelta(days=7))
    [first] = live.announce(c.uow(), OPS, sid2, pushes=port, audience=Audience.ALL, send_at=NOW + timedelta(days=1))
    pushes.cancel(c.uow(), OPS, first.push_id or "")
    assert _views(c, sid2, port)[0].state == "cancelled"
    [second] = live.announce(c.uow(), OPS, sid2, pushes=port, audience=Audience.ALL)
    assert second.push_id != first.push_id and second.state == "scheduled"
    _deliver(c, sender)
    assert received_mass(server) == {o: 1 for o in openids + patients}
    assert [job["msgtype"] for job in server.wechat.mass_sent] == ["text"]
    with c.uow() as u:
        text = u.session.scalar(select(PushRow.variants).where(PushRow.public_id == second.push_id))["A"]["text"]
    assert text.startswith("直播预告：11月12日 20:00（周四）") and text == second.text
    assert [v.state for v in _views(c, sid2, port)] == ["withdrawn", "sent"]


def test_the_sending_rules_of_the_push_engine_apply(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c, (server, sender) = container, wx
    clinic = build_clinic(c)
    openids = add_followers(c, server, 5)
    rules = pushes.SendingRules(cap=P.FrequencyCap(count=100, days=7))
    port = CampaignAnnouncementPushes(rules)
    pushes.opt_out(c.uow(), OPS, openids[4], "menu")
    # two followers already had WeChat's 4 mass sends this month
    busy = pushes.create_segment(c.uow(), OPS, "两位", {"openids": openids[:2]})
    for i in range(4):
        view = pushes.create_push(c.uow(), OPS, name=f"群发{i}", kind="mass", segment=busy.name,
                                  variants={"A": {"msgtype": "text", "text": "健康科普"}})
        pushes.schedule(c.uow(), OPS, view.public_id, None, rules)
        _deliver(c, sender, rules)
    sid = _session(c, clinic)
    [ann] = live.announce(c.uow(), OPS, sid, pushes=port, audience=Audience.ALL)
    _deliver(c, sender, rules)
    got = received_mass(server)
    assert {o: got[o] for o in openids} == {openids[0]: 4, openids[1]: 4, openids[2]: 1, openids[3]: 1, openids[4]: 0}
    [view] = _views(c, sid, port)
    assert (view.state, view.sent, view.skipped) == ("sent", 2, 2)
    with c.uow() as u:
        reasons = set(u.session.scalars(select(DeliveryRow.error).join(PushRow).where(
            PushRow.public_id == ann.push_id, DeliveryRow.state == "skipped")))
    assert reasons == {"mass_monthly_4"}  # the opted-out follower is not even in the audience
    # the frequency cap (all kinds together) holds the next announcement back
    capped = CampaignAnnouncementPushes(pushes.SendingRules(cap=P.FrequencyCap(count=1, days=7)))
    sid2 = _session(c, clinic, START + timedelta(hours=1))
    live.announce(c.uow(), OPS, sid2, pushes=capped, kind="template", audience=Audience.ALL)
    _deliver(c, sender, pushes.SendingRules(cap=P.FrequencyCap(count=1, days=7)))
    [view2] = _views(c, sid2, capped)
    assert (view2.state, view2.sent, view2.skipped) == ("skipped", 0, 4)
    assert received_templates(server) == {}


def test_quiet_hours_move_the_push_and_live_3_refuses_one_after_the_start(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c, (server, sender) = container, wx
    clinic = build_clinic(c)
    add_followers(c, server, 3)
    port = CampaignAnnouncementPushes()
    c.clock.current = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # 22:30 Shanghai: quiet hours
    sid = _session(c, clinic)
    [ann] = live.announce(c.uow(), OPS, sid, pushes=port, audience=Audience.ALL)
    assert ann.send_at == datetime(2026, 11, 3, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert _deliver(c, sender).sent == 0  # nothing before 08:00
    c.clock.current = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
    assert _deliver(c, sender).sent == 3
    # a session at 07:30 the next morning cannot be announced tonight: the push would land after it
    c.clock.current = datetime(2026, 11, 3, 14, 30, tzinfo=UTC)
    early = _session(c, clinic, datetime(2026, 11, 3, 23, 30, tzinfo=UTC))
    with pytest.raises(RuleViolation) as exc:
        live.announce(c.uow(), OPS, early, pushes=port, audience=Audience.ALL)
    assert exc.value.rule == "LIVE-3"
    with c.uow() as u:  # the refused push was rolled back with the announcement
        assert u.session.scalar(select(func.count()).select_from(PushRow)) == 1
    with pytest.raises(InvalidInput):
        live.announce(c.uow(), OPS, early, pushes=port, kind="sms")


def test_reschedule_announces_the_new_time_and_never_the_old_one_twice(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c, (server, sender) = container, wx
    clinic = build_clinic(c)
    openids = add_followers(c, server, 4)
    port = CampaignAnnouncementPushes()
    group = live.add_group(c.uow(), OPS, "心内科高血压患者群1", "心血管内科", "王护士")
    sid = _session(c, clinic)
    send = datetime(2026, 11, 4, 2, 0, tzinfo=UTC)  # Wednesday 10:00
    live.announce(c.uow(), OPS, sid, pushes=port, kind="template", audience=Audience.ALL, send_at=send,
                  group_ids=(group.public_id,))
    # moved before anything went out: the old push is cancelled, the new one keeps the send time
    live.reschedule(c.uow(), OPS, sid, START + timedelta(days=1), pushes=port)
    views = _views(c, sid, port)
    assert [(v.target, v.state) for v in views] == [("followers", "withdrawn"), (group.public_id, "withdrawn"),
                                                    ("followers", "scheduled"), (group.public_id, "to_post")]
    assert views[2].send_at == send and views[2].purpose == "announce"
    assert "11月6日 20:00" in views[3].text and "原定" not in views[3].text
    c.clock.current = send
    _deliver(c, sender)
    times = [m["data"]["keyword2"]["value"] for m in server.wechat.template_sent]
    assert times == ["11月6日 20:00"] * 4 and received_templates(server) == {o: 1 for o in openids}
    [task] = live.group_tasks(c.uow(), OPS, session_id=sid)
    live.mark_posted(c.uow(), OPS, task.public_id or "")
    # moved again after it went out: a correction to everyone told, with the old and the new time
    live.reschedule(c.uow(), OPS, sid, START + timedelta(days=2), pushes=port)
    views = [v for v in _views(c, sid, port) if v.status == "open"]
    assert [(v.target, v.purpose) for v in views] == [("followers", "reschedule"), (group.public_id, "reschedule")]
    assert views[1].text.startswith("各位群友好！原定11月6日 20:00的「高血压直播答疑」直播改到11月7日 20:00（周六）")
    _deliver(c, sender)
    times = [m["data"]["keyword2"]["value"] for m in server.wechat.template_sent]
    assert times.count("11月5日 20:00") == 0 and times.count("11月6日 20:00") == 4 and times.count("11月7日 20:00") == 4
    assert server.wechat.template_sent[-1]["data"]["first"]["value"] == "直播改期通知"
    # cancelled: open announcements withdrawn, their pushes cancelled, the told group gets a notice
    live.cancel(c.uow(), OPS, sid, "医生临时手术", pushes=port)
    tasks = live.group_tasks(c.uow(), OPS, session_id=sid)
    assert [t.purpose for t in tasks] == ["cancel"]
    assert tasks[0].target_name == "心内科高血压患者群1（群主 王护士）" and "直播取消了" in tasks[0].text
    assert all(v.status != "open" or v.purpose == "cancel" for v in _views(c, sid, port))
    with pytest.raises(IllegalTransition):
        live.reschedule(c.uow(), OPS, sid, START + timedelta(days=3), pushes=port)


def test_cancelling_a_session_cancels_its_scheduled_push(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c, (server, sender) = container, wx
    clinic = build_clinic(c)
    add_followers(c, server, 3)
    port = CampaignAnnouncementPushes()
    sid = _session(c, clinic)
    [ann] = live.announce(c.uow(), OPS, sid, pushes=port, audience=Audience.ALL, send_at=NOW + timedelta(days=1))
    live.cancel(c.uow(), OPS, sid, "医生临时手术", pushes=port)
    assert pushes.status(c.uow(), OPS, ann.push_id)[0].status == "cancelled"
    c.clock.current = NOW + timedelta(days=1)
    assert _deliver(c, sender).sent == 0 and received_mass(server) == {}
    assert _views(c, sid, port)[0].state == "withdrawn"


def test_the_withdraw_job_stops_an_announcement_the_start_overtook(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c, (server, sender) = container, wx
    clinic = build_clinic(c)
    add_followers(c, server, 3)
    port = CampaignAnnouncementPushes()
    sid = _session(c, clinic)
    [ann] = live.announce(c.uow(), OPS, sid, pushes=port, audience=Audience.ALL,
                          send_at=START - timedelta(minutes=30))
    assert live.withdraw_stale(c.uow(), c.clock.now(), pushes=port) == live.Withdrawn(0, 0)  # still good
    c.clock.current = START  # the dispatcher was down until the start
    assert live.withdraw_stale(c.uow(), c.clock.now(), pushes=port) == live.Withdrawn(1, 1)
    assert _deliver(c, sender).sent == 0 and received_mass(server) == {}
    assert live.withdraw_stale(c.uow(), c.clock.now(), pushes=port) == live.Withdrawn(0, 0)  # idempotent
    assert pushes.status(c.uow(), OPS, ann.push_id)[0].status == "cancelled"


def test_community_groups_get_a_task_list_and_operators_mark_it_posted(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    c = container
    clinic = build_clinic(c)
    port = CampaignAnnouncementPushes()
    g1 = live.add_group(c.uow(), OPS, "心内科高血压患者群1", "心血管内科", "王护士")
    g2 = live.add_group(c.uow(), OPS, "心内科高血压患者群2", "心血管内科", "李护士")
    sid = _session(c, clinic)
    template = "{{ group.name }}的朋友们：{{ when }}，{{ host }}在{{ platform }}讲「{{ title }}」。"
    with pytest.raises(InvalidInput, match="不存在的变量"):
        live.announce(c.uow(), OPS, sid, followers=False, group_ids=(g1.public_id,), group_template="{{ speaker }}")
    tasks = live.announce(c.uow(), OPS, sid, followers=False, group_ids=(g1.public_id, g2.public_id),
                          group_template=template)
    assert [t.text for t in tasks] == [
        "心内科高血压患者群1的朋友们：11月5日 20:00，医生A医生在抖音讲「高血压直播答疑」。",
        "心内科高血压患者群2的朋友们：11月5日 20:00，医生A医生在抖音讲「高血压直播答疑」。"]
    listed = live.group_tasks(c.uow(), OPS)
    assert [t.target_name for t in listed] == ["心内科高血压患者群1（群主 王护士）", "心内科高血压患者群2（群主 李护士）"]
    c.clock.current = NOW + timedelta(hours=1)  # type: ignore[attr-defined]
    done = live.mark_posted(c.uow(), OPS, listed[0].public_id or "")
    assert (done.state, done.posted_at, done.posted_by) == ("posted", NOW + timedelta(hours=1), OPS.actor)
    with pytest.raises(IllegalTransition):
        live.mark_posted(c.uow(), OPS, listed[0].public_id or "")
    assert [t.public_id for t in live.group_tasks(c.uow(), OPS)] == [listed[1].public_id]
    assert len(live.group_tasks(c.uow(), OPS, include_done=True)) == 2
    [followers] = live.announce(c.uow(), OPS, sid, pushes=port, audience=Audience.ALL)
    with pytest.raises(RuleViolation) as exc:  # a push announcement is the engine's, not posted by hand
        live.mark_posted(c.uow(), OPS, followers.public_id or "")
    assert exc.value.rule == "LIVE-4"
    with pytest.raises(Exception, match="推送引擎"):
        live.announce(c.uow(), OPS, sid, followers=True)  # no port: refused, not silently unsent
