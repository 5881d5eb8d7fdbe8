"""Pushes and the delivery ledger against the sandbox WeChat server, on SQLite and PostgreSQL.
Every sending rule has a test that fails when the rule is removed; what reached WeChat is
counted from what the sandbox received."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.domain import pushes as P
from campaigns.persistence.pushes import DeliveryRow
from campaigns.services import delivery, pushes
from campaigns.services.render import make_renderer
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import InvalidInput, RuleViolation
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import FollowerRow
from opsctl.wiring import Container
from tests.support.pushes import (
    add_followers,
    received_mass,
    received_templates,
    synced_sandbox,
)

OPS = Principal("ops:test", "ops", Role.OPERATIONS)
RENDER = make_renderer("http://127.0.0.1:8700")
NOTICE = {"template_id": "tpl_sandbox_notice", "fields": {"first": "复诊提醒", "keyword3": "心内科"}}


@pytest.fixture
def wx(container: Container) -> Iterator[tuple[SandboxServer, WeChatPushSender]]:
    with synced_sandbox(container) as wx:
        yield wx


def _push(container: Container, name: str, segment: str, *, kind: str = "template",
          variant: dict | None = None, rules: pushes.SendingRules = pushes.SendingRules(), **kw) -> str:
    view = pushes.create_push(container.uow(), OPS, name=name, kind=kind, segment=segment,
                              variants={"A": variant or (NOTICE if kind == "template" else
                                                         {"msgtype": "text", "text": "健康讲座通知"})}, **kw)
    pushes.schedule(container.uow(), OPS, view.public_id, None, rules)
    return view.public_id


def _deliver(container: Container, sender: WeChatPushSender, rules: pushes.SendingRules = pushes.SendingRules(),
             **kw) -> delivery.WorkerCounts:
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender, rules=rules)
    return delivery.run_worker(container.uow, sender, RENDER, until_idle=True, sleep=lambda _s: None, **kw)


def _states(container: Container, push_id: str) -> dict[str, int]:
    return pushes.status(container.uow(), OPS, push_id)[0].counts


def test_template_push_reaches_every_follower_once(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 30)
    seg = pushes.create_segment(container.uow(), OPS, "全部关注者", {})
    assert seg.size == 30
    push_id = _push(container, "复诊提醒", seg.name)
    counts = _deliver(container, sender)
    assert counts.sent == 30
    assert received_templates(server) == {o: 1 for o in openids}
    assert _states(container, push_id)["sent"] == 30
    assert pushes.status(container.uow(), OPS, push_id)[0].status == "done"
    assert server.wechat.template_sent[0]["data"]["keyword3"]["value"] == "心内科"
    # a second run of the planner and the worker sends nothing more
    _deliver(container, sender)
    assert sum(received_templates(server).values()) == 30


def test_transient_errors_are_retried_and_nothing_is_sent_twice(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    server.wechat.failure_share = 0.3  # WeChat answers -1 (busy) to 30 % of calls
    openids = add_followers(container, server, 40)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    push_id = _push(container, "重试", seg.name)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    for _ in range(12):  # retried rows wait for their next attempt: move the clock on
        delivery.run_worker(container.uow, sender, RENDER, until_idle=True, sleep=lambda _s: None)
        container.clock.current += timedelta(minutes=15)
    assert received_templates(server) == {o: 1 for o in openids}
    assert _states(container, push_id)["sent"] == 40
    with container.uow() as uow:
        assert max(uow.session.scalars(select(DeliveryRow.attempts))) > 1


def test_a_token_refresh_refused_by_wechat_is_retried_later_not_a_worker_crash(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 3)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    push_id = _push(container, "换令牌", seg.name)
    server.wechat.expire_all_tokens()  # every call is refused with 40001 ...
    server.wechat.inject(-1, path="stable_token", times=3)  # ... and the token endpoint is busy for a while
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    for _ in range(6):
        delivery.run_worker(container.uow, sender, RENDER, until_idle=True, sleep=lambda _s: None)
        container.clock.current += timedelta(minutes=15)
    assert received_templates(server) == {o: 1 for o in openids}
    assert _states(container, push_id)["sent"] == 3


def test_worker_crash_between_call_and_record_is_settled_from_the_job_finished_event(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 4)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    _push(container, "崩溃", seg.name)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    calls = delivery.claim(container.uow(), "w1", limit=10)
    delivery._render_calls(container.uow, RENDER, calls)
    # the worker made the first two calls and died before recording them; the other two never left
    for call in calls[:2]:
        (did, openid), = call.rows
        sender.template(openid, "tpl_sandbox_notice", call.rendered[did]["data"], url=None,
                        client_msg_id=delivery.client_msg_id(call.push_public_id, did, call.claim))
    server.flush_events()  # WeChat pushes TEMPLATESENDJOBFINISH for the two that were sent
    container.clock.current += timedelta(minutes=3)
    settled = delivery.settle_unknown(container.uow(), container.clock.now(), sender=sender, render=RENDER)
    assert settled.sent == 4 and settled.resent == 2
    assert received_templates(server) == {o: 1 for o in openids}
    with container.uow() as uow:
        assert set(uow.session.scalars(select(DeliveryRow.state))) == {"sent"}


def test_unknown_rows_are_not_resent_once_wechat_no_longer_dedupes(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 2)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    _push(container, "迟到", seg.name)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    delivery.claim(container.uow(), "w1", limit=10)  # claimed, then the worker vanished
    container.clock.current += timedelta(minutes=11)  # past WeChat's 10-minute client_msg_id window
    waiting = delivery.settle_unknown(container.uow(), container.clock.now(), sender=sender, render=RENDER)
    assert waiting.resent == 0 and waiting.waiting == 2
    container.clock.current += timedelta(minutes=10)
    final = delivery.settle_unknown(container.uow(), container.clock.now(), sender=sender, render=RENDER)
    assert final.failed == 2 and sum(received_templates(server).values()) == 0


def test_quiet_hours_hold_the_workers_and_move_the_schedule(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 3)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    container.clock.current = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    push_id = _push(container, "夜间", seg.name)
    view = pushes.status(container.uow(), OPS, push_id)[0]
    assert view.scheduled_at == datetime(2026, 11, 3, 0, 0, tzinfo=UTC)  # 08:00 the next morning
    pushes.dispatch_due(container.uow(), datetime(2026, 11, 3, 0, 0, tzinfo=UTC), api=sender)
    assert delivery.claim(container.uow(), "w1") == []  # still 22:30: workers hold
    assert sum(received_templates(server).values()) == 0
    container.clock.current = datetime(2026, 11, 3, 0, 5, tzinfo=UTC)
    assert delivery.run_worker(container.uow, sender, RENDER, until_idle=True).sent == 3


def test_frequency_cap_skips_recipients_over_the_limit(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 3)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    rules = pushes.SendingRules(cap=P.FrequencyCap(count=2, days=7))
    for i in range(3):
        _push(container, f"第{i}条", seg.name, rules=rules)
        _deliver(container, sender, rules)
        container.clock.current += timedelta(hours=1)
    assert set(received_templates(server).values()) == {2}
    last = pushes.status(container.uow(), OPS)[-1]
    assert last.counts["skipped"] == 3
    container.clock.current += timedelta(days=7)  # the window moved on
    _push(container, "一周后", seg.name, rules=rules)
    assert _deliver(container, sender, rules).sent == 3


def test_wechat_monthly_four_mass_sends_are_enforced_before_wechat_refuses(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 3)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    rules = pushes.SendingRules(cap=P.FrequencyCap(count=100, days=7))
    for i in range(5):
        _push(container, f"群发{i}", seg.name, kind="mass", rules=rules)
        _deliver(container, sender, rules)
        container.clock.current += timedelta(days=1)
    assert set(received_mass(server).values()) == {4}
    fifth = pushes.status(container.uow(), OPS)[-1]
    assert fifth.counts["skipped"] == 3 and fifth.counts["sent"] == 0
    assert all(job["filtered"] == 0 for job in server.wechat.mass_sent)  # WeChat never had to filter
    with container.uow() as uow:
        assert set(uow.session.scalars(select(DeliveryRow.error).where(DeliveryRow.state == "skipped"))) == {"mass_monthly_4"}


def test_mass_sends_go_in_chunks_of_2_to_max(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 21)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    rules = pushes.SendingRules(mass_chunk_max=10)
    _push(container, "分批", seg.name, kind="mass", rules=rules)
    _deliver(container, sender, rules)
    assert sorted(len(job["sent"]) for job in server.wechat.mass_sent) == [7, 7, 7]
    assert received_mass(server) == {o: 1 for o in openids}
    assert P.chunk_sizes(10_001) == [5001, 5000]
    with pytest.raises(InvalidInput):
        P.chunk_sizes(1)


def test_opt_outs_are_excluded_from_counts_and_skipped_after_planning(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 5)
    pushes.opt_out(container.uow(), OPS, openids[0])
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    assert seg.size == 4
    push_id = _push(container, "退订", seg.name)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    pushes.opt_out(container.uow(), OPS, openids[1])  # opts out after the push was planned
    delivery.run_worker(container.uow, sender, RENDER, until_idle=True)
    got = received_templates(server)
    assert openids[0] not in got and openids[1] not in got and len(got) == 3
    assert _states(container, push_id)["skipped"] == 1


def test_template_fields_are_strict_and_fit_twenty_characters(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 2)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    with pytest.raises(InvalidInput):
        pushes.create_push(container.uow(), OPS, name="x", kind="template", segment=seg.name,
                           variants={"A": {"template_id": "tpl_sandbox_notice", "fields": {"first": "{{ patient.nmae }}"}}})
    with pytest.raises(RuleViolation) as too_long:
        pushes.create_push(container.uow(), OPS, name="x", kind="template", segment=seg.name,
                           variants={"A": {"template_id": "tpl_sandbox_notice", "fields": {"first": "请" * 21}}})
    assert too_long.value.rule == "WX-TPL-20"
    # followers without a bound patient have no patient variables: refused per recipient, never sent
    push_id = _push(container, "姓名", seg.name, variant={"template_id": "tpl_sandbox_notice",
                                                         "fields": {"first": "{{ patient.salutation }}您好"}})
    _deliver(container, sender)
    assert _states(container, push_id)["failed"] == 2 and sum(received_templates(server).values()) == 0


def test_preview_goes_to_test_openids_only_and_dry_run_sends_nothing(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 5)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    view = pushes.create_push(container.uow(), OPS, name="预览", kind="template", segment=seg.name,
                              variants={"A": NOTICE})
    dry = pushes.preview(container.uow(), OPS, sender, view.public_id, [openids[0]], dry_run=True)
    assert dry.sent == 0 and sum(received_templates(server).values()) == 0
    sent = pushes.preview(container.uow(), OPS, sender, view.public_id, [openids[0]])
    assert sent.sent == 1 and received_templates(server) == {openids[0]: 1}
    assert pushes.count_audience(container.uow(), OPS, seg.name) == 5
    with container.uow() as uow:
        assert uow.session.scalar(select(DeliveryRow.id)) is None


def test_cancel_stops_rows_not_yet_claimed(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 6)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    push_id = _push(container, "取消", seg.name)
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    delivery.run_worker(container.uow, sender, RENDER, until_idle=False, max_calls=2, batch=2)
    pushes.cancel(container.uow(), OPS, push_id)
    delivery.run_worker(container.uow, sender, RENDER, until_idle=True)
    assert sum(received_templates(server).values()) == 2
    assert _states(container, push_id)["cancelled"] == 4


def test_segments_by_channel_and_stage(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    openids = add_followers(container, server, 4)
    with container.uow() as uow:
        uow.session.execute(update(FollowerRow).where(FollowerRow.openid == openids[0]).values(unsubscribed_at=container.clock.now()))
        uow.commit()
    assert pushes.create_segment(container.uow(), OPS, "仅关注", {"stage": "followed"}).size == 3
    assert pushes.create_segment(container.uow(), OPS, "已问诊", {"stage": "consulted"}).size == 0
    assert pushes.create_segment(container.uow(), OPS, "名单", {"openids": openids[:3]}).size == 2
    with pytest.raises(InvalidInput):
        pushes.create_segment(container.uow(), OPS, "坏", {"gender": "F"})


def test_ab_split_clicks_pick_the_winner_and_the_rest_gets_it(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import parse_qs, urlsplit

    from fastapi.testclient import TestClient

    from campaigns.services import links
    from opsctl.http.app import create_app

    server, sender = wx
    openids = add_followers(container, server, 40)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    view = pushes.create_push(
        container.uow(), OPS, name="AB", kind="template", segment=seg.name, link="https://hospital.example/flu",
        variants={"A": {"template_id": "tpl_sandbox_notice", "fields": {"first": "流感疫苗预约"}},
                  "B": {"template_id": "tpl_sandbox_notice", "fields": {"first": "今冬流感提醒"}}},
        ab_metric="ctr", ab_decide_after_hours=2, ab_test_share=50)
    pushes.schedule(container.uow(), OPS, view.public_id, None)
    _deliver(container, sender)
    first_wave = list(server.wechat.template_sent)
    assert 5 < len(first_wave) < 35  # about half the audience is in the test
    assert _states(container, view.public_id)["pending"] == 40 - len(first_wave)  # the rest waits
    assert links.pick_winners(container.uow(), container.clock.now()).decided == 0  # not yet due
    app = create_app(container.settings, container)
    with TestClient(app) as http:
        for message in first_wave:  # every B recipient clicks, no A recipient does
            if message["data"]["first"]["value"] == "今冬流感提醒":
                url = urlsplit(message["url"])
                response = http.get(url.path, params=parse_qs(url.query), follow_redirects=False)
                assert response.status_code == 302 and response.headers["location"] == "https://hospital.example/flu"
        assert http.get("/l/" + urlsplit(first_wave[0]["url"]).path.rsplit("/", 1)[1], params={"u": "1.forged"},
                        follow_redirects=False).status_code == 302  # still redirects, counted anonymously
    clicked_b = sum(m["data"]["first"]["value"] == "今冬流感提醒" for m in first_wave)
    with container.uow() as uow:  # the clicks feed the funnel events of those openids
        from sqlalchemy import func as f

        from campaigns.persistence.models import FunnelEventRow

        assert uow.session.scalar(select(f.count()).select_from(FunnelEventRow)
                                  .where(FunnelEventRow.event == "push_click")) == clicked_b
    container.clock.current += timedelta(hours=2)
    assert links.pick_winners(container.uow(), container.clock.now()).decided == 1
    assert pushes.status(container.uow(), OPS, view.public_id)[0].winner == "B"
    delivery.run_worker(container.uow, sender, RENDER, until_idle=True)
    assert received_templates(server) == {o: 1 for o in openids}
    rest = server.wechat.template_sent[len(first_wave):]
    assert rest and {m["data"]["first"]["value"] for m in rest} == {"今冬流感提醒"}
    assert links.pick_winners(container.uow(), container.clock.now()).decided == 0  # decided once
