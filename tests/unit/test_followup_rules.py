"""Follow-up rules (pure): quiet hours, step transitions, step definitions, due instants."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain.followup import (
    STEP_TRANSITIONS,
    QuietHours,
    StepAction,
    StepStatus,
    due_at,
    parse_steps,
    step_transition,
)
from clinical_core.domain.errors import IllegalTransition, InvalidInput

SH = lambda h, m=0, d=2: datetime(2026, 11, d, h, m, tzinfo=UTC) - timedelta(hours=8)


def test_default_quiet_hours_span_midnight() -> None:
    q = QuietHours()
    assert not q.contains(SH(8)) and not q.contains(SH(20, 59))
    assert q.contains(SH(21)) and q.contains(SH(23, 30)) and q.contains(SH(3)) and q.contains(SH(7, 59))
    assert q.next_allowed(SH(23, 30)) == SH(8, d=3)
    assert q.next_allowed(SH(3)) == SH(8)
    assert q.next_allowed(SH(12)) == SH(12)


def test_configured_and_disabled_quiet_hours() -> None:
    q = QuietHours.parse("12:00-14:00")
    assert q.contains(SH(13)) and not q.contains(SH(23)) and q.next_allowed(SH(13)) == SH(14)
    assert not QuietHours.parse("00:00-00:00").contains(SH(3))
    with pytest.raises(InvalidInput):
        QuietHours.parse("9pm-8am")


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
       st.times(), st.times())
def test_next_allowed_is_never_quiet_and_never_earlier(instant: datetime, start: time, end: time) -> None:
    q = QuietHours(start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0))
    allowed = q.next_allowed(instant)
    assert allowed >= instant and not q.contains(allowed)
    assert allowed - instant <= timedelta(days=1)


def test_step_transitions() -> None:
    s = step_transition("fus_1", StepStatus.PENDING, StepAction.CLAIM)
    assert s is StepStatus.SENDING
    assert step_transition("fus_1", s, StepAction.SENT) is StepStatus.SENT
    for terminal in (StepStatus.SENT, StepStatus.UNKNOWN, StepStatus.CANCELLED):
        with pytest.raises(IllegalTransition):
            step_transition("fus_1", terminal, StepAction.CLAIM)  # never sent twice
    with pytest.raises(IllegalTransition):
        step_transition("fus_1", StepStatus.UNKNOWN, StepAction.RETRY)  # unknown is not resent


@given(st.lists(st.sampled_from(list(StepAction)), max_size=30))
def test_only_pending_is_ever_claimed(actions: list[StepAction]) -> None:
    status, claims = StepStatus.PENDING, 0
    for action in actions:
        try:
            new = step_transition("fus_x", status, action)
        except IllegalTransition:
            continue
        if action is StepAction.CLAIM:
            assert status is StepStatus.PENDING
            claims += 1
        status = new
    # a claim after SENT is impossible: SENT has no outgoing transition
    assert all(StepStatus.SENT not in sources for sources, _ in STEP_TRANSITIONS.values())


def test_step_definitions_are_checked() -> None:
    steps = parse_steps([{"day": 30, "kind": "schedule", "title": "预约复诊", "url": "/h5/booking"},
                         {"day": 3, "kind": "questionnaire", "title": "问卷", "questionnaire_id": "qnr_1"}])
    assert [s.day for s in steps] == [3, 30]  # sorted by day
    for bad, field in [([{"day": -1, "kind": "text", "title": "t", "body": "b"}], "steps[0].day"),
                       ([{"day": 1, "kind": "image", "title": "t"}], "steps[0].url"),
                       ([{"day": 1, "kind": "questionnaire", "title": "t"}], "steps[0].questionnaire_id"),
                       ([{"day": 1, "kind": "text", "title": "一二三四五六七八九十一二三四五六七八九十一"}], "steps[0].title"),
                       ([{"day": 1, "kind": "course", "title": "t", "url": "javascript:alert(1)"}], "steps[0].url"),
                       ([], "steps")]:
        with pytest.raises(InvalidInput) as error:
            parse_steps(bad)
        assert error.value.field == field


def test_due_instants_follow_the_local_day_and_avoid_quiet_hours() -> None:
    start = SH(10)
    (late,) = parse_steps([{"day": 2, "at": "21:30", "kind": "text", "title": "t", "body": "b"}])
    assert due_at(start, late, QuietHours()) == SH(8, d=5)
    (today,) = parse_steps([{"day": 0, "at": "09:00", "kind": "text", "title": "t", "body": "b"}])
    assert due_at(start, today, QuietHours()) == start  # already past today: now


def test_step_template_fields_fit_wechats_20_characters() -> None:
    from datetime import UTC, datetime

    from campaigns.domain.followup import OutboundMessage, StepKind, template_data
    from campaigns.domain.limits import check_template_data

    long = OutboundMessage("stp_1", "o1", StepKind.TEXT, "降压药服用提醒与家庭血压测量要点说明及注意事项", "早晚\n各测一次血压" * 5, None,
                           datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    data = template_data(long)
    check_template_data(data)  # no field over 20 characters, no line break
    assert data["keyword1"]["value"].endswith("…") and len(data["keyword1"]["value"]) == 20
    assert data["keyword2"]["value"] == "2026-11-02 10:00"  # Beijing time
    assert data["first"]["value"] == "随访提醒：文字"
