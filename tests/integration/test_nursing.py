"""Home nursing end to end through the services, on SQLite and PostgreSQL:
items by address (NUR-1), booking and payment, admin review, R44, R46, R49,
the service hall, check-in/out in the geofence with overrides, the chained
visit record, trajectory, cancellations with refunds, reviews."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from clinical_core.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from clinical_core.persistence.models import AuditRow, StaffRow
from clinical_core.persistence.nursing import NursingRefundRow, NursingVisitEventRow
from clinical_core.services import (
    nursing_catalogue,
    nursing_hall,
    nursing_orders,
    nursing_visits,
)
from clinical_core.services.nursing_visits import TrackPoint
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS
from tests.support.nursing import (
    ADDRESS,
    FUTIAN_ADDRESS,
    LUOHU_ADDRESS,
    YUEHAI,
    NursingWorld,
    assessed,
    book_paid,
    build_nursing,
    window,
)


@pytest.fixture
def w(container: Container) -> NursingWorld:
    return build_nursing(container, container.clock.now())


def _site(c: Container, order_id: str) -> tuple[float, float]:
    with c.uow() as uow:
        row = nursing_orders.load(uow, order_id)
        return row.lat, row.lon


def test_items_are_filtered_by_address_and_window(container: Container, w: NursingWorld) -> None:
    start, end = window(container.clock.now())
    uow = container.uow
    nanshan = nursing_catalogue.offered_items(uow(), w.clinic.patient, w.geocoder, ADDRESS, start, end)
    assert {i.code for i in nanshan.items} == {"WOUND", "PICC"} and nanshan.district == "南山区"
    assert "502" not in nanshan.address  # masked
    futian = nursing_catalogue.offered_items(uow(), w.clinic.patient, w.geocoder, FUTIAN_ADDRESS, start, end)
    assert [i.code for i in futian.items] == ["WOUND"]  # by polygon only
    assert nursing_catalogue.offered_items(uow(), w.clinic.patient, w.geocoder, LUOHU_ADDRESS, start, end).items == []
    short = nursing_catalogue.offered_items(uow(), w.clinic.patient, w.geocoder, ADDRESS, start,
                                            start + timedelta(minutes=50))
    assert [i.code for i in short.items] == ["WOUND"]  # the 60-minute PICC item does not fit
    with pytest.raises(InvalidInput):  # booking an item not offered there
        nursing_orders.book_order(uow(), w.clinic.patient, w.gateway, w.geocoder, w.item, LUOHU_ADDRESS, start, end,
                                  "术后伤口需要换药")


def test_full_journey_with_payment_review_grab_visit_and_review(container: Container, w: NursingWorld) -> None:
    c, uow = container, container.uow
    order = book_paid(c, w, approve=False)
    assert nursing_orders.get_order(uow(), ADMIN, order).order.status == "paid"
    # The hall shows only approved orders.
    assert nursing_hall.service_hall(uow(), w.nurse) == []
    nursing_orders.approve_order(uow(), ADMIN, order)
    hall = nursing_hall.service_hall(uow(), w.nurse)
    assert [h.public_id for h in hall] == [order] and hall[0].distance_km < 1 and "502" not in hall[0].address
    assert nursing_hall.service_hall(uow(), w.far_nurse) == []  # out of reach
    grabbed = nursing_hall.grab_order(uow(), w.nurse, order)
    assert grabbed.status == "assigned" and grabbed.nurse_id == w.nurse.staff_id
    assert grabbed.address.endswith("502")  # the assigned nurse sees the address
    with pytest.raises(IllegalTransition):
        nursing_hall.grab_order(uow(), w.senior, order)
    lat, lon = _site(c, order)
    with pytest.raises(RuleViolation) as r46:  # no assessment yet
        nursing_visits.check_in(uow(), w.nurse, order, lat, lon)
    assert r46.value.rule == "R46"
    assessed(c, w, order, w.nurse)
    nursing_visits.record_track(uow(), w.nurse, order, [
        TrackPoint(lat + 0.01, lon, c.clock.now() - timedelta(minutes=10)), TrackPoint(lat, lon, c.clock.now())])
    assert nursing_visits.check_in(uow(), w.nurse, order, lat + 0.001, lon).status == "in_service"  # ~110 m
    nursing_visits.add_note(uow(), w.nurse, order, "测量血压 128/80")
    done = nursing_visits.check_out(uow(), w.nurse, order, lat, lon, "伤口清洁干燥，已换药，嘱三日后复查")
    assert done.status == "completed"
    reviewed = nursing_orders.review_order(uow(), w.clinic.patient, order, 5, "护士很专业")
    assert reviewed.status == "reviewed" and reviewed.review_rating == 5 and reviewed.paid_fen == 15000
    record = nursing_visits.visit_record(uow(), ADMIN, order)
    assert record.intact and [e.kind for e in record.entries] == ["check_in", "note", "check_out"]
    assert record.entries[2].data["notes"].startswith("伤口清洁")
    assert len(nursing_visits.trajectory(uow(), ADMIN, order)) == 2
    with uow() as u:
        actions = list(u.session.scalars(select(AuditRow.action).where(AuditRow.entity_id == order)
                                         .order_by(AuditRow.id)))
    for a in ("nursing_order.create", "nursing_payment.succeeded", "nursing_order.pay", "nursing_order.approve",
              "nursing_order.grab", "nursing_order.assess", "nursing_order.check_in", "nursing_order.check_out",
              "nursing_order.review"):
        assert a in actions


def test_r44_nurses_below_the_bar_are_refused(container: Container, w: NursingWorld) -> None:
    for nurse in (w.junior, w.new_nurse):
        with pytest.raises(RuleViolation) as exc:
            nursing_catalogue.register_home_nurse(container.uow(), ADMIN, nurse.staff_id or "", *YUEHAI)
        assert exc.value.rule == "R44"
    order = book_paid(container, w)
    with pytest.raises(Forbidden):  # not registered for home nursing
        nursing_hall.grab_order(container.uow(), w.junior, order)
    with pytest.raises(NotFound):  # the admin cannot assign an unregistered nurse either
        nursing_orders.assign_order(container.uow(), ADMIN, order, w.junior.staff_id or "")
    with container.uow() as u:  # a registered nurse's title is corrected downwards later
        u.session.execute(update(StaffRow).where(StaffRow.public_id == w.nurse.staff_id).values(title="护士"))
        u.commit()
    for attempt in (lambda: nursing_hall.grab_order(container.uow(), w.nurse, order),
                    lambda: nursing_orders.assign_order(container.uow(), ADMIN, order, w.nurse.staff_id or "")):
        with pytest.raises(RuleViolation) as again:
            attempt()
        assert again.value.rule == "R44"


def test_item_qualification_and_skills_restrict_the_hall(container: Container, w: NursingWorld) -> None:
    order = book_paid(container, w, item=w.picc)
    assert order not in [h.public_id for h in nursing_hall.service_hall(container.uow(), w.nurse)]
    with pytest.raises(RuleViolation):
        nursing_hall.grab_order(container.uow(), w.nurse, order)
    assert order in [h.public_id for h in nursing_hall.service_hall(container.uow(), w.senior)]
    assert nursing_hall.grab_order(container.uow(), w.senior, order).nurse_id == w.senior.staff_id


def test_admin_reassigns_and_rejects(container: Container, w: NursingWorld) -> None:
    uow = container.uow
    order = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, order)
    moved = nursing_orders.assign_order(uow(), ADMIN, order, w.senior.staff_id or "", "原护士临时请假")
    assert moved.nurse_id == w.senior.staff_id and moved.status == "assigned"
    with pytest.raises(Forbidden):  # the previous nurse lost access
        nursing_orders.get_order(uow(), w.nurse, order)
    with pytest.raises(Forbidden):
        nursing_orders.approve_order(uow(), w.nurse, order)
    rejected_id = book_paid(container, w, approve=False)
    rejected = nursing_orders.reject_order(uow(), OPS, rejected_id, "地址超出服务能力")
    assert rejected.status == "rejected"
    with uow() as u:
        refunds = [(r.amount_fen, r.reason, r.status) for r in u.session.scalars(select(NursingRefundRow))]
    assert refunds == [(15000, "rejected", "pending")]
    settled = nursing_orders.settle_refunds(uow(), w.gateway)
    assert (settled.succeeded, settled.failed) == (1, 0)
    assert nursing_orders.get_order(uow(), ADMIN, rejected_id).order.payment_state == "refunded"


def test_unsuitable_assessment_ends_the_order_with_a_full_refund(container: Container, w: NursingWorld) -> None:
    order = book_paid(container, w)
    result = nursing_orders.record_assessment(container.uow(), w.clinic.doctor_a, order, False,
                                              "病情不稳定，建议住院治疗")
    assert not result.suitable
    view = nursing_orders.get_order(container.uow(), ADMIN, order).order
    assert view.status == "rejected"
    nursing_orders.settle_refunds(container.uow(), w.gateway)
    assert nursing_orders.get_order(container.uow(), ADMIN, order).order.refunded_fen == 15000


def test_r49_blacklisted_recipient_cannot_book(container: Container, w: NursingWorld) -> None:
    uow = container.uow
    start, end = window(container.clock.now())
    nursing_catalogue.blacklist_add(uow(), ADMIN, w.clinic.patient.patient_id or "", "多次辱骂上门护士")
    with pytest.raises(RuleViolation) as exc:
        nursing_orders.book_order(uow(), w.clinic.patient, w.gateway, w.geocoder, w.item, ADDRESS, start, end,
                                  "术后伤口需要换药")
    assert exc.value.rule == "R49"
    listed = nursing_catalogue.blacklist_list(uow(), ADMIN)
    assert len(listed) == 1 and listed[0].patient_name == "张*"
    nursing_orders.book_order(uow(), w.clinic.other_patient, w.gateway, w.geocoder, w.item, ADDRESS, start, end,
                              "术后伤口需要换药")  # others are unaffected
    nursing_catalogue.blacklist_remove(uow(), ADMIN, w.clinic.patient.patient_id or "")
    nursing_orders.book_order(uow(), w.clinic.patient, w.gateway, w.geocoder, w.item, ADDRESS, start, end,
                              "术后伤口需要换药")


def test_geofence_refuses_far_check_in_until_an_admin_overrides(container: Container, w: NursingWorld) -> None:
    uow = container.uow
    order = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, order)
    assessed(container, w, order, w.nurse)
    lat, lon = _site(container, order)
    with pytest.raises(RuleViolation) as exc:
        nursing_visits.check_in(uow(), w.nurse, order, lat + 0.01, lon)  # ~1.1 km away
    assert exc.value.rule == "R47"
    with pytest.raises(Forbidden):
        nursing_visits.override_geofence(uow(), w.nurse, order, "check_in", "定位漂移")
    nursing_visits.override_geofence(uow(), ADMIN, order, "check_in", "小区内定位漂移，已电话核实")
    assert nursing_visits.check_in(uow(), w.nurse, order, lat + 0.01, lon).status == "in_service"
    with pytest.raises(RuleViolation):  # the override was for the check-in only, and is used up
        nursing_visits.check_out(uow(), w.nurse, order, lat + 0.01, lon, "已完成伤口换药")
    record = nursing_visits.visit_record(uow(), ADMIN, order)
    assert [e.kind for e in record.entries] == ["override", "check_in"]
    assert record.entries[1].data["override_seq"] == 1 and record.entries[0].data["reason"].startswith("小区")


def test_a_later_edit_of_the_visit_record_is_evident(container: Container, w: NursingWorld) -> None:
    uow = container.uow
    order = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, order)
    assessed(container, w, order, w.nurse)
    lat, lon = _site(container, order)
    nursing_visits.check_in(uow(), w.nurse, order, lat, lon)
    nursing_visits.check_out(uow(), w.nurse, order, lat, lon, "伤口换药顺利")
    assert nursing_visits.visit_record(uow(), ADMIN, order).intact
    with uow() as u:  # someone moves the check-out time in the database
        first = u.session.scalar(select(NursingVisitEventRow).where(NursingVisitEventRow.kind == "check_in"))
        assert first is not None
        u.session.execute(update(NursingVisitEventRow).where(NursingVisitEventRow.id == first.id)
                          .values(at=first.at - timedelta(minutes=30)))
        u.commit()
    record = nursing_visits.visit_record(uow(), ADMIN, order)
    assert not record.intact and record.first_broken_seq == 1


def test_cancellations_refund_by_the_rule(container: Container, w: NursingWorld) -> None:
    uow, clock = container.uow, container.clock
    early = book_paid(container, w)
    nursing_orders.cancel_order(uow(), w.clinic.patient, early, "临时住院")
    late = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, late)
    start = nursing_orders.get_order(uow(), ADMIN, late).order.window_start
    clock.current = start - timedelta(minutes=30)  # type: ignore[attr-defined]
    cancelled = nursing_orders.cancel_order(uow(), w.clinic.patient, late, "家属已处理")
    assert cancelled.status == "cancelled"
    with uow() as u:
        amounts = sorted(u.session.scalars(select(NursingRefundRow.amount_fen)))
    assert amounts == [7500, 15000]
    with pytest.raises(Forbidden):  # another patient
        nursing_orders.cancel_order(uow(), w.clinic.other_patient, book_paid(container, w))


def test_concurrent_duplicate_payment_notification_is_idempotent(container: Container, w: NursingWorld) -> None:
    start, end = window(container.clock.now())
    created = nursing_orders.book_order(container.uow(), w.clinic.patient, w.gateway, w.geocoder, w.item, ADDRESS,
                                        start, end, "术后伤口需要换药")
    headers, body = w.gateway.simulate_payment(created.out_trade_no)
    for _ in range(2):
        view = nursing_orders.handle_paid_notification(container.uow(), w.gateway, headers, body)
    assert view.status == "paid" and view.paid_fen == 15000


def test_nurse_sees_only_her_orders_and_patients_theirs(container: Container, w: NursingWorld) -> None:
    uow = container.uow
    mine = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, mine)
    other = book_paid(container, w, patient=w.clinic.other_patient)
    nursing_hall.grab_order(uow(), w.senior, other)
    assert [o.public_id for o in nursing_orders.list_orders(uow(), w.nurse)] == [mine]
    assert [o.public_id for o in nursing_orders.list_orders(uow(), w.clinic.patient)] == [mine]
    with pytest.raises(Forbidden):
        nursing_orders.get_order(uow(), w.nurse, other)
    with pytest.raises(Forbidden):
        nursing_visits.record_track(uow(), w.nurse, other, [TrackPoint(22.5, 113.9, container.clock.now())])
    with pytest.raises(Conflict):  # not on duty for that order
        nursing_visits.add_note(uow(), w.nurse, mine, "尚未签到")


def test_stale_orders_job_cancels_unpaid_and_refunds_unserved(container: Container, w: NursingWorld) -> None:
    from clinical_core.services import nursing_jobs

    uow, clock = container.uow, container.clock
    start, end = window(clock.now())
    unpaid = nursing_orders.book_order(uow(), w.clinic.patient, w.gateway, w.geocoder, w.item, ADDRESS, start, end,
                                       "术后伤口需要换药").order.public_id
    nobody = book_paid(container, w)  # approved, never grabbed
    served = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, served)
    early = nursing_jobs.expire_stale_orders(uow(), clock.now())
    assert early.cancelled_unpaid == () and early.cancelled_unserved == ()
    result = nursing_jobs.expire_stale_orders(uow(), start + timedelta(minutes=1))
    assert result.cancelled_unpaid == (unpaid,) and result.cancelled_unserved == (nobody,)
    assert result.refunds_requested == 1
    again = nursing_jobs.expire_stale_orders(uow(), start + timedelta(minutes=2))  # idempotent
    assert again.cancelled_unpaid == () and again.cancelled_unserved == ()
    assert nursing_orders.get_order(uow(), ADMIN, served).order.status == "assigned"
    nursing_orders.settle_refunds(uow(), w.gateway)
    assert nursing_orders.get_order(uow(), ADMIN, nobody).order.payment_state == "refunded"
