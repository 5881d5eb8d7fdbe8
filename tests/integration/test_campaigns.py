"""Channels, QR codes, package cards, menus and funnels against the sandbox server, on SQLite
and PostgreSQL. The funnel is checked number by number on a small hand-computed dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from campaigns.persistence.models import FunnelEventRow, QrCodeRow
from campaigns.services import channels, funnels, menus
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import DrugRow, FollowerRow, PatientRow
from opsctl.wiring import Container
from tests.support.wechat import client, sandbox

OPS = Principal("ops:test", "ops", Role.OPERATIONS)
DOCTOR = Principal("doc:test", "doc", Role.DOCTOR)
MENU = {"button": [{"type": "click", "name": "预约挂号", "key": "BOOK"},
                   {"name": "服务", "sub_button": [{"type": "view", "name": "图文咨询", "url": "https://example.org/c"}]}]}


def test_channel_qr_codes_encode_the_channel_and_count_the_permanent_quota(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        channels.create_channel(container.uow(), OPS, "dept-cardio", "department_poster", "心内科海报")
        with pytest.raises(Conflict):
            channels.create_channel(container.uow(), OPS, "dept-cardio", "department_poster", "重复")
        with pytest.raises(Forbidden):
            channels.create_channel(container.uow(), DOCTOR, "x1", "event", "医生不能建渠道")
        permanent = channels.create_qr(container.uow(), OPS, wx, "dept-cardio")
        temporary = channels.create_qr(container.uow(), OPS, wx, "dept-cardio", temporary_days=30)
        assert (permanent.scene, temporary.scene) == ("ch:dept-cardio:1", "ch:dept-cardio:2")
        assert permanent.expires_at is None and temporary.expires_at == container.clock.now() + timedelta(days=30)
        assert server.wechat.scene_of_ticket(permanent.ticket) == "ch:dept-cardio:1"
        with pytest.raises(InvalidInput):
            channels.create_qr(container.uow(), OPS, wx, "dept-cardio", temporary_days=31)
        assert [c.qr_codes for c in channels.list_channels(container.uow(), OPS)] == [2]


def test_permanent_quota_is_checked_before_any_call(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        channels.create_channel(container.uow(), OPS, "poster", "department_poster", "海报")
        channels.create_qr(container.uow(), OPS, wx, "poster")
        monkeypatch.setattr("campaigns.domain.limits.QR_PERMANENT_MAX", 1)
        calls = len(server.wechat.received)
        with pytest.raises(RuleViolation):
            channels.create_qr(container.uow(), OPS, wx, "poster")
        with pytest.raises(RuleViolation):
            channels.create_card_batch(container.uow(), OPS, wx, "pc-1", 2, "扫码关注")
        assert len(server.wechat.received) == calls


def test_package_card_batch_has_one_scene_per_card_and_refuses_prescription_drugs(container: Container) -> None:
    with container.uow() as uow:
        uow.session.add(DrugRow(public_id="drg_1", code="D1", generic_name="阿托伐他汀钙片", specification="20mg",
                                dosage_form="片剂", unit="盒", price_fen=3000, category="western", prescription_only=True))
        uow.commit()
    with sandbox(container) as server:
        wx = client(container, server)
        with pytest.raises(RuleViolation) as raised:
            channels.create_card_batch(container.uow(), OPS, wx, "pc-202611", 3, "阿托伐他汀钙片 复购优惠")
        assert "阿托伐他汀钙片" in str(raised.value)
        batch = channels.create_card_batch(container.uow(), OPS, wx, "pc-202611", 3, "扫码关注，复诊续方送药到家")
        assert [c.scene for c in batch.cards] == ["pc:pc-202611:00001", "pc:pc-202611:00002", "pc:pc-202611:00003"]
        again = channels.get_card_batch(container.uow(), OPS, "pc-202611")
        assert [c.ticket for c in again.cards] == [c.ticket for c in batch.cards]


def test_card_sheet_is_a_pdf_with_every_card(container: Container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from campaigns.adapters.card_sheet import Card, render_html, write_pdf

    cards = [Card(f"pc:b:{i:05d}", f"http://weixin.qq.com/q/{i}") for i in range(1, 10)]
    html = render_html("示例医院", "b", "扫码关注<b>", cards)
    assert html.count("<svg") == 9 and "&lt;b&gt;" in html  # copy is escaped
    assert write_pdf(tmp_path / "cards.pdf", "示例医院", "b", "扫码关注", cards) == 2  # 8 per A4 page
    assert (tmp_path / "cards.pdf").read_bytes().startswith(b"%PDF")


def test_menu_publish_validates_diffs_and_replaces(container: Container) -> None:
    with sandbox(container) as server:
        wx = client(container, server)
        wanted = menus.parse_menu_set({**MENU, "conditional": [{**MENU, "matchrule": {"tag_id": "100"}}]})
        dry = menus.publish(container.uow(), OPS, wx, wanted, dry_run=True)
        assert "+ 新增一级菜单「预约挂号」" in dry.changes and not dry.published and server.wechat.menu is None
        done = menus.publish(container.uow(), OPS, wx, wanted, dry_run=False)
        assert done.published and len(done.conditional_ids) == 1
        assert menus.publish(container.uow(), OPS, wx, wanted, dry_run=False).changes == []
        bad = menus.parse_menu_set({"button": [{"type": "click", "name": "过长的一级菜单名称", "key": "k"}]})
        calls = len(server.wechat.received)
        with pytest.raises(InvalidInput) as raised:
            menus.publish(container.uow(), OPS, wx, bad, dry_run=False)
        assert "40018" in str(raised.value) and len(server.wechat.received) == calls  # no call made
        pulled = menus.current(wx)
        assert pulled is not None and pulled.default["button"][0]["name"] == "预约挂号"


def _at(day: int, hour: int = 2) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def test_funnel_on_a_hand_computed_dataset(container: Container) -> None:
    """Channel poster (scene ch:poster:1): openids a, b, c, g scanned; a, b and g followed through it,
    c only scanned (already a follower from elsewhere); a and g registered as patients
    (patients.openid; 2 and 4 days after following), b not. Channel cards: d followed through pc:cards:00001 and is bound (followers.patient_id).
    An unregistered scene qr_old: e followed. f followed through the poster but outside the window.
    Expected, window 2026-10-01..10-31:
      poster: scanned 4 (a, b, c, g), followed 3, registered 2
      cards:  scanned 1, followed 1, registered 1
      qr_old: scanned 1, followed 1, registered 0
    """
    with sandbox(container) as server:
        wx = client(container, server)
        channels.create_channel(container.uow(), OPS, "poster", "department_poster", "门诊大厅海报")
        channels.create_qr(container.uow(), OPS, wx, "poster")
        channels.create_card_batch(container.uow(), OPS, wx, "cards", 1, "扫码关注")
    with container.uow() as uow:
        poster_id = uow.session.scalar(select(QrCodeRow.channel_id).where(QrCodeRow.scene == "ch:poster:1"))
        cards_id = uow.session.scalar(select(QrCodeRow.channel_id).where(QrCodeRow.scene == "pc:cards:00001"))
        patient = dict(name_enc="x", phone_enc="x", phone_hash="h", id_card_enc="x", sex="F",
                       birth_date=datetime(1980, 1, 1).date(), created_at=_at(1))
        uow.session.add(PatientRow(public_id="pat_a", id_card_hash="a", openid="oa", **{**patient, "created_at": _at(5)}))
        uow.session.add(PatientRow(public_id="pat_g", id_card_hash="g", openid="og", **{**patient, "created_at": _at(7)}))
        d_patient = PatientRow(public_id="pat_d", id_card_hash="d", **patient)
        uow.session.add(d_patient)
        uow.session.flush()
        uow.session.add_all([
            FollowerRow(openid="oa", subscribed_at=_at(3), scene="ch:poster:1"),
            FollowerRow(openid="ob", subscribed_at=_at(4), scene="ch:poster:1"),
            FollowerRow(openid="og", subscribed_at=_at(3), scene="ch:poster:1"),
            FollowerRow(openid="oc", subscribed_at=datetime(2026, 9, 1, tzinfo=UTC), scene=None),
            FollowerRow(openid="od", subscribed_at=_at(5), scene="pc:cards:00001", patient_id=d_patient.id),
            FollowerRow(openid="oe", subscribed_at=_at(6), scene="qr_old"),
            FollowerRow(openid="of", subscribed_at=datetime(2026, 11, 5, tzinfo=UTC), scene="ch:poster:1"),
        ])
        uow.session.add_all([
            FunnelEventRow(openid="oa", event="subscribe", scene="ch:poster:1", channel_id=poster_id, at=_at(3)),
            FunnelEventRow(openid="oa", event="scan", scene="ch:poster:1", channel_id=poster_id, at=_at(9)),
            FunnelEventRow(openid="oc", event="scan", scene="ch:poster:1", channel_id=poster_id, at=_at(7)),
            FunnelEventRow(openid="oc", event="scan", scene="ch:poster:1", channel_id=poster_id, at=_at(8)),
            FunnelEventRow(openid="od", event="subscribe", scene="pc:cards:00001", channel_id=cards_id, at=_at(5)),
            FunnelEventRow(openid="of", event="subscribe", scene="ch:poster:1", channel_id=poster_id,
                           at=datetime(2026, 11, 5, tzinfo=UTC)),
        ])
        uow.commit()
    result = funnels.funnel(container.uow(), OPS, _at(1, 0), datetime(2026, 11, 1, tzinfo=UTC))
    table = {f.channel: [s.count for s in f.stages[:3]] for f in result}
    assert table == {"poster": [4, 3, 2], "cards": [1, 1, 1], "qr_old": [1, 1, 0]}
    poster = next(f for f in result if f.channel == "poster")
    assert poster.name == "门诊大厅海报" and poster.registered_channel
    assert [s.conversion_from_previous for s in poster.stages[:3]] == [None, 0.75, 0.6667]
    assert [s.drop_off for s in poster.stages[:3]] == [0, 1, 1]
    assert poster.stages[3].count == 0 and "尚未上线" in poster.stages[3].note
    assert not next(f for f in result if f.channel == "qr_old").registered_channel
    # a registered 2 days after following, g 4 days: median 3; d's record predates the follow
    assert {f.channel: f.median_days_to_register for f in result} == {"poster": 3.0, "cards": None, "qr_old": None}
    only = funnels.funnel(container.uow(), OPS, _at(1, 0), datetime(2026, 11, 1, tzinfo=UTC), "cards")
    assert [f.channel for f in only] == ["cards"]
    with container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(FollowerRow)) == 7


def test_weekly_retention_matrix_by_follow_week(container: Container) -> None:
    """Cohort 2026-10-05 (Mon): a, b, c follow on Tue 10-06 10:00 Shanghai; a leaves after 3 days,
    b after 8 days, c stays. Cohort 2026-10-12: d follows on 10-13 and stays. Now: 2026-10-28.
    Week 0: both cohorts 100 %; week 1: 2/3 (b, c) and 1/1; week 2: 1/3 (c) and 1/1;
    week 3: 1/3 and not yet observed for the second cohort (15 days old)."""
    container.clock.current = datetime(2026, 10, 28, 2, tzinfo=UTC)
    tue = datetime(2026, 10, 6, 2, tzinfo=UTC)
    with container.uow() as uow:
        uow.session.add_all([
            FollowerRow(openid="ra", subscribed_at=tue, unsubscribed_at=tue + timedelta(days=3)),
            FollowerRow(openid="rb", subscribed_at=tue, unsubscribed_at=tue + timedelta(days=8)),
            FollowerRow(openid="rc", subscribed_at=tue),
            FollowerRow(openid="rd", subscribed_at=tue + timedelta(days=7)),
        ])
        uow.commit()
    rows = funnels.weekly_retention(container.uow(), OPS, datetime(2026, 10, 1, tzinfo=UTC),
                                    datetime(2026, 11, 1, tzinfo=UTC), weeks=3)
    assert [(r.cohort, r.size) for r in rows] == [("2026-10-05", 3), ("2026-10-12", 1)]
    assert rows[0].retained == [1.0, 0.6667, 0.3333, 0.3333]
    assert rows[1].retained == [1.0, 1.0, 1.0, None]
