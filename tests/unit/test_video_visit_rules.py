"""网络门诊, pure: the visit's state machine, the follow-up check (R02, R17,
VC-2), refunds by notice, the fused schedule (VC-3), the schedule rows, and
the video-room tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.adapters.video_room_sandbox import SandboxVideoRooms
from clinical_core.domain.errors import (
    IllegalTransition,
    InvalidInput,
    RuleViolation,
    Unauthenticated,
)
from clinical_core.domain.time import FixedClock
from clinical_core.domain.video_schedule import (
    OfflineSlot,
    OnlineSlot,
    cut_slots,
    fuse,
    parse_rows,
)
from clinical_core.domain.video_visit import (
    TERMINAL,
    CheckMode,
    Diagnosis,
    OfflineVisit,
    VisitAction,
    VisitStatus,
    check_guest,
    ensure_followup_confirmed,
    patient_refund_percent,
    refund_amount,
    strict_evidence,
    transition,
)

S, A = VisitStatus, VisitAction
EXPECTED_EDGES = {
    (S.BOOKED, A.PAY): S.PAID, (S.PAID, A.CHECK_IN): S.WAITING, (S.WAITING, A.START_CALL): S.IN_CALL,
    (S.IN_CALL, A.END): S.ENDED, (S.PAID, A.NO_SHOW): S.NO_SHOW,
    (S.BOOKED, A.CANCEL): S.CANCELLED, (S.PAID, A.CANCEL): S.CANCELLED, (S.WAITING, A.CANCEL): S.CANCELLED,
    (S.PAID, A.TERMINATE): S.TERMINATED, (S.WAITING, A.TERMINATE): S.TERMINATED,
    (S.IN_CALL, A.TERMINATE): S.TERMINATED,
}
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_transition_table_is_exactly_the_designed_graph() -> None:
    actual = {}
    for status in S:
        for action in A:
            try:
                actual[(status, action)] = transition("vv_x", status, action)
            except IllegalTransition as exc:
                assert exc.state == status.label and exc.action == action.label
    assert actual == EXPECTED_EDGES


@given(st.lists(st.sampled_from(list(A)), max_size=30), st.sampled_from(list(CheckMode)), st.booleans())
def test_no_illegal_transition_is_reachable(actions: list[VisitAction], mode: CheckMode, confirmed: bool) -> None:
    """Random action sequences as the services apply them: refused moves leave the state alone, accepted
    moves follow the graph, nothing leaves a terminal state, a call happens only after payment and
    check-in (and, in declared mode, the doctor's confirmation), and a cancelled visit never had a call."""
    status, path = S.BOOKED, [S.BOOKED]
    for action in actions:
        try:
            if action is A.START_CALL:
                transition("vv_x", status, action)
                ensure_followup_confirmed("vv_x", mode, confirmed)
            new = transition("vv_x", status, action)
        except IllegalTransition:
            assert (status, action) not in EXPECTED_EDGES
            continue
        except RuleViolation as exc:
            assert exc.rule == "R17" and mode is CheckMode.DECLARED and not confirmed
            continue
        assert status not in TERMINAL
        assert EXPECTED_EDGES[(status, action)] == new
        status = new
        path.append(status)
        if status is S.IN_CALL:
            assert S.PAID in path and S.WAITING in path
            assert mode is not CheckMode.DECLARED or confirmed
        if status is S.ENDED:
            assert S.IN_CALL in path
        if status is S.CANCELLED:
            assert S.IN_CALL not in path
        if status is S.NO_SHOW:
            assert S.WAITING not in path


def _visit(no: str = "MZ1", days: int = 30, dept: str = "心血管内科", dx: bool = True,
           kind: str = "outpatient") -> OfflineVisit:
    return OfflineVisit(no, NOW - timedelta(days=days), kind, dept,
                        (Diagnosis("I10", "原发性高血压"),) if dx else ())


def test_strict_evidence_is_the_chosen_visit_of_the_same_department() -> None:
    evidence = strict_evidence([_visit()], "MZ1", "心血管内科", NOW, 365)
    assert evidence.his_visit_no == "MZ1" and evidence.diagnoses == (Diagnosis("I10", "原发性高血压"),)
    cases = [([_visit()], None, "VC-2"), ([_visit()], "MZ9", "VC-2"), ([_visit(days=400)], "MZ1", "R02"),
             ([_visit(dept="消化内科")], "MZ1", "R02"), ([_visit(dx=False)], "MZ1", "R02"),
             ([_visit(days=-1)], "MZ1", "R02"), ([_visit(kind="telemedicine")], "MZ1", "R02")]
    for visits, chosen, rule in cases:
        with pytest.raises(RuleViolation) as caught:
            strict_evidence(visits, chosen, "心血管内科", NOW, 365)
        assert caught.value.rule == rule


@pytest.mark.parametrize(("notice", "percent"), [(timedelta(hours=48), 100), (timedelta(hours=24), 100),
                                                 (timedelta(hours=23, minutes=59), 50), (timedelta(hours=2), 50),
                                                 (timedelta(minutes=119), 0), (timedelta(seconds=1), 0)])
def test_refund_by_notice(notice: timedelta, percent: int) -> None:
    assert patient_refund_percent(NOW + notice, NOW) == percent


def test_no_cancellation_once_the_slot_began_and_refunds_round_down() -> None:
    with pytest.raises(RuleViolation):
        patient_refund_percent(NOW, NOW)
    assert refund_amount(2999, 50) == 1499 and refund_amount(3000, 100) == 3000
    with pytest.raises(InvalidInput):
        refund_amount(3000, 101)


def test_guests_are_named_and_limited() -> None:
    assert check_guest(" 翻译 ", 0) == "翻译"
    with pytest.raises(InvalidInput):
        check_guest("路人", 0)
    with pytest.raises(RuleViolation):
        check_guest("家属", 2)


def test_fuse_joins_overlapping_times_and_shares_taken() -> None:
    t = NOW
    online = [OnlineSlot("s1", "d1", t, t + timedelta(minutes=15), False, 3000),
              OnlineSlot("s2", "d1", t + timedelta(minutes=15), t + timedelta(minutes=30), True, 3000)]
    offline = [OfflineSlot("h1", "d1", t + timedelta(minutes=10), t + timedelta(minutes=20), False),
               OfflineSlot("h2", "d1", t + timedelta(minutes=40), t + timedelta(minutes=50), True),
               OfflineSlot("h3", "d2", t, t + timedelta(minutes=10), False)]
    fused = {(f.doctor_id, f.online_slot_id or f.offline_slot_nos[0]): f for f in fuse(online, offline)}
    assert fused[("d1", "s1")].offline_slot_nos == ("h1",) and fused[("d1", "s1")].channels == "both"
    assert not fused[("d1", "s1")].taken
    assert fused[("d1", "s2")].taken and fused[("d1", "s2")].offline_slot_nos == ("h1",)
    assert fused[("d1", "h2")].channels == "offline" and fused[("d1", "h2")].taken
    assert fused[("d2", "h3")].channels == "offline" and not fused[("d2", "h3")].taken
    offline_taken = [OfflineSlot("h1", "d1", t + timedelta(minutes=10), t + timedelta(minutes=20), True)]
    assert all(f.taken for f in fuse(online, offline_taken) if f.online_slot_id)  # gone from both


def test_cut_slots_leaves_a_short_remainder() -> None:
    slots = cut_slots(NOW, NOW + timedelta(minutes=50), 15)
    assert [s.starts_at.minute for s in slots] == [0, 15, 30] and slots[-1].ends_at == NOW + timedelta(minutes=45)


def test_schedule_rows_report_every_bad_row() -> None:
    rows = [(2, {"employee_no": "E1", "date": "2026-11-05", "start": "08:00", "end": "09:00", "slot_minutes": 15,
                 "price_yuan": 30}),
            (3, {"employee_no": "", "date": "2026-11-05", "start": "08:00", "end": "09:00", "slot_minutes": 15,
                 "price_yuan": 30}),
            (4, {"employee_no": "E1", "date": "2026-11-05", "start": "8：30", "end": "9:30", "slot_minutes": 15,
                 "price_yuan": "abc"}),
            (5, {"employee_no": "E1", "date": "2026-11-05", "start": "08:00", "end": "09:00", "slot_minutes": 15,
                 "price_yuan": 30})]
    lines, errors = parse_rows(rows, NOW)
    assert [line.row for line in lines] == [2]
    assert errors == ["第 3 行：医生工号不能为空", "第 4 行：挂号费应为数字（元）", "第 5 行：与第 2 行重复"]
    assert lines[0].starts_at == datetime(2026, 11, 5, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai


def test_room_tokens_are_signed_bound_to_a_room_and_expire() -> None:
    clock = FixedClock(NOW)
    rooms = SandboxVideoRooms(clock, b"k" * 32)
    room = rooms.open_room("vv_1", NOW + timedelta(hours=1))
    assert rooms.open_room("vv_1", NOW + timedelta(hours=1)) == room != rooms.open_room("vv_2", NOW)
    token = rooms.issue_token(room, "vpt_1", "patient", NOW + timedelta(minutes=30))
    assert rooms.verify_token(token.token).participant_id == "vpt_1"
    other_key = SandboxVideoRooms(clock, b"x" * 32)
    with pytest.raises(Unauthenticated, match="签名"):
        other_key.verify_token(token.token)
    forged = SandboxVideoRooms(clock, b"x" * 32).issue_token(room, "vpt_1", "doctor", NOW + timedelta(minutes=30))
    with pytest.raises(Unauthenticated, match="签名"):
        rooms.verify_token(forged.token)
    with pytest.raises(Unauthenticated, match="格式"):
        rooms.verify_token(token.token[:-8] + "AAAAAAAA")
    clock.advance(timedelta(minutes=31))
    with pytest.raises(Unauthenticated, match="过期"):
        rooms.verify_token(token.token)
    with pytest.raises(InvalidInput):
        rooms.issue_token(room, "vpt_1", "patient", NOW)
