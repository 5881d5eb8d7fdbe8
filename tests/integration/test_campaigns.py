"""Channels, QR codes, package cards, menus and funnels against the sandbox server, on SQLite
and PostgreSQL. The funnel is checked number by number on a small hand-computed dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from campaigns.persistence.models import FunnelEventRow, QrCodeRow
from campaigns.services import channels, funnels, menus
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from clinical_core.domain.staff import Role
from clinical_core.persistence.consultation import ConsultationRow, ConsultServiceRow
from clinical_core.persistence.models import DrugRow, FollowerRow, PatientRow, StaffRow
from clinical_core.persistence.prescription import PrescriptionRow
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
    """Channel poster (scene ch:poster:1): openids a, b, c, g scanned; a, b and g followed through it
    (a and g on day 3, b on day 4), c only scanned (already a follower from elsewhere); a and g
    registered as patients (patients.openid; days 5 and 7), b not. Channel cards: d followed through
    pc:cards:00001 on day 5 and is bound (followers.patient_id; record from day 1). An unregistered
    scene qr_old: e followed. f followed through the poster but outside the window.
    Clinical core (every instant at 02:00 UTC of the October day):
      a: consultation created but never paid (day 4: does not count), paid day 6 (first), paid day 20
         (second, 14 days later); prescription rejected day 7, approved day 21.
      g: free non-designated consultation day 8 (does not count), 定点保障 free day 10 (first), paid
         day 12 (second, 2 days later); prescription approved then voided (does not count).
      d: paid day 2 (before the follow: does not count), paid day 9 (first), paid Nov 20 (42 days
         later: no repeat); prescription approved day 10, its parcel carried batch ``cards``.
    Expected, window 2026-10-01..10-31, repeat window 30 days:
      poster: scanned 4, followed 3, registered 2, consulted 2, prescribed 1, video 0, nursing 0, repeat 2
      cards:  1, 1, 1, 1, 1, 0, 0, 0      qr_old: 1, 1, 0, 0, 0, 0, 0, 0
    Medians, days from the follow: poster registered (2, 4) → 3, consulted (3, 7) → 5, prescribed
    (18) → 18, repeat (17, 9) → 13; cards registered none (bound before following), consulted 4,
    prescribed 5. With a 10-day repeat window only g repeats (poster repeat 1, median 9).
    """
    with sandbox(container) as server:
        wx = client(container, server)
        channels.create_channel(container.uow(), OPS, "poster", "department_poster", "门诊大厅海报")
        channels.create_qr(container.uow(), OPS, wx, "poster")
        channels.create_card_batch(container.uow(), OPS, wx, "cards", 1, "扫码关注")
        channels.create_card_batch(container.uow(), OPS, wx, "cards2", 1, "扫码关注")
    with container.uow() as uow:
        poster_id = uow.session.scalar(select(QrCodeRow.channel_id).where(QrCodeRow.scene == "ch:poster:1"))
        cards_id = uow.session.scalar(select(QrCodeRow.channel_id).where(QrCodeRow.scene == "pc:cards:00001"))
        patient = dict(name_enc="x", phone_enc="x", phone_hash="h", id_card_enc="x", sex="F",
                       birth_date=datetime(1980, 1, 1).date(), created_at=_at(1))
        pa = PatientRow(public_id="pat_a", id_card_hash="a", openid="oa", **{**patient, "created_at": _at(5)})
        pg = PatientRow(public_id="pat_g", id_card_hash="g", openid="og", **{**patient, "created_at": _at(7)})
        d_patient = PatientRow(public_id="pat_d", id_card_hash="d", **patient)
        doctor = StaffRow(public_id="stf_doc", employee_no="D001", name="李明", role="doctor", created_at=_at(1))
        uow.session.add_all([pa, pg, d_patient, doctor])
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
        services = {kind: ConsultServiceRow(public_id=f"csv_{kind}", kind=kind, name=kind, price_fen=3000,
                                            time_limit_minutes=1440, created_at=_at(1), updated_at=_at(1),
                                            doctor_id=doctor.id if kind == "text" else None)
                    for kind in ("text", "designated")}
        uow.session.add_all(services.values())
        uow.session.flush()
        n = iter(range(100))

        def consult(p: PatientRow, paid: datetime | None, price: int = 3000, kind: str = "text",
                    status: str = "closed", created: datetime | None = None) -> ConsultationRow:
            row = ConsultationRow(public_id=f"con_{next(n)}", service_id=services[kind].id, kind=kind, patient_id=p.id,
                                  status=status, price_fen=price, question_enc="x", created_at=created or paid,
                                  paid_at=paid, transfer_count=0)
            uow.session.add(row)
            return row

        def rx(c: ConsultationRow, status: str, reviewed: datetime) -> PrescriptionRow:
            row = PrescriptionRow(public_id=f"rx_{next(n)}", consultation_id=c.id, patient_id=c.patient_id,
                                  doctor_id=doctor.id, status=status, diagnoses=[], valid_days=3, warnings=[],
                                  issued_at=reviewed, reviewed_at=reviewed)
            uow.session.add(row)
            return row

        consult(pa, None, status="cancelled", created=_at(4))
        a1 = consult(pa, _at(6))
        consult(pa, _at(20))
        consult(pg, _at(8), price=0)
        g1 = consult(pg, _at(10), price=0, kind="designated")
        consult(pg, _at(12))
        consult(d_patient, _at(2))
        d1 = consult(d_patient, _at(9))
        consult(d_patient, datetime(2026, 11, 20, 2, tzinfo=UTC))
        uow.session.flush()
        a_rejected = rx(a1, "rejected", _at(7))
        rx(a1, "approved", _at(21))
        rx(g1, "voided", _at(11))
        d_rx = rx(d1, "approved", _at(10))
        uow.session.flush()
        d_rx_id, rejected_id = d_rx.public_id, a_rejected.public_id
        uow.commit()
    link = channels.link_prescription(container.uow(), OPS, "cards", d_rx_id)
    assert link.parcels == 1 and channels.link_prescription(container.uow(), OPS, "cards", d_rx_id).parcels == 1
    with pytest.raises(Conflict):  # one parcel, one batch
        channels.link_prescription(container.uow(), OPS, "cards2", d_rx_id)
    with pytest.raises(RuleViolation):  # a rejected prescription is never shipped
        channels.link_prescription(container.uow(), OPS, "cards2", rejected_id)
    window = (_at(1, 0), datetime(2026, 11, 1, tzinfo=UTC))
    result = funnels.funnel(container.uow(), OPS, *window)
    table = {f.channel: [s.count for s in f.stages] for f in result}
    assert [s.stage for s in result[0].stages] == ["scanned", "followed", "registered", "consulted", "prescribed",
                                                  "video_visit", "nursing", "repeat"]
    assert table == {"poster": [4, 3, 2, 2, 1, 0, 0, 2], "cards": [1, 1, 1, 1, 1, 0, 0, 0],
                     "qr_old": [1, 1, 0, 0, 0, 0, 0, 0]}
    poster = next(f for f in result if f.channel == "poster")
    assert poster.name == "门诊大厅海报" and poster.registered_channel
    assert [s.conversion_from_previous for s in poster.stages] == [None, 0.75, 0.6667, 1.0, 0.5, 0.0, 0.0, 1.0]
    assert [s.conversion_overall for s in poster.stages] == [1.0, 0.75, 0.5, 0.5, 0.25, 0.0, 0.0, 0.5]
    assert [s.drop_off for s in poster.stages] == [0, 1, 1, 0, 1, 2, 2, 0]
    assert "尚未上线" in poster.stages[5].note and "尚未上线" in poster.stages[6].note
    assert "30 天" in poster.stages[7].note
    assert not next(f for f in result if f.channel == "qr_old").registered_channel
    medians = {f.channel: [s.median_days for s in f.stages] for f in result}
    assert medians == {"poster": [None, None, 3.0, 5.0, 18.0, None, None, 13.0],
                       "cards": [None, None, None, 4.0, 5.0, None, None, None],
                       "qr_old": [None] * 8}
    assert {f.channel: f.median_days_to_register for f in result} == {"poster": 3.0, "cards": None, "qr_old": None}
    assert {f.channel: f.parcels for f in result} == {"poster": None, "cards": 1, "qr_old": None}
    short = {f.channel: f.stages[7] for f in funnels.funnel(container.uow(), OPS, *window, repeat_days=10)}
    assert (short["poster"].count, short["poster"].median_days, short["poster"].conversion_from_previous) == (1, 9.0, 0.5)
    only = funnels.funnel(container.uow(), OPS, *window, "cards")
    assert [f.channel for f in only] == ["cards"] and [s.count for s in only[0].stages] == [1, 1, 1, 1, 1, 0, 0, 0]
    assert only[0].parcels == 1 and only[0].stages[4].median_days == 5.0
    with container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(FollowerRow)) == 7


def test_card_batch_links_only_approved_prescriptions_one_batch_per_parcel(container: Container) -> None:
    with pytest.raises(NotFound):
        channels.link_prescription(container.uow(), OPS, "nope", "rx_x")
    with pytest.raises(Forbidden):
        channels.link_prescription(container.uow(), DOCTOR, "nope", "rx_x")


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
