"""Live announcements, pure: the announcement state machine (hypothesis), the state shown from
the push behind it, LIVE-3, and the jinja2 copy (strict: an unknown variable is an error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from content.domain import live
from content.domain.live import AnnouncementAction, AnnouncementStatus, LiveStatus
from content.services import live_copy as copy
from opsctl.live_pushes import literal

START = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)  # 20:00 Shanghai
FACTS = copy.SessionFacts("高血压直播答疑", START, 60, "抖音", "深大附院心内科", "李明", "心血管内科")


@given(st.lists(st.tuples(st.sampled_from(list(AnnouncementAction)), st.booleans()), max_size=6))
def test_announcement_moves_only_by_its_transitions(moves: list[tuple[AnnouncementAction, bool]]) -> None:
    status = AnnouncementStatus.OPEN
    for action, is_group in moves:
        try:
            new = live.announcement_next("ann_x", status, action, is_group=is_group)
        except RuleViolation as exc:
            assert exc.rule == "LIVE-4" and action is AnnouncementAction.POST and not is_group
            continue
        except IllegalTransition:
            assert status is not AnnouncementStatus.OPEN  # posted and withdrawn are final
            continue
        assert status is AnnouncementStatus.OPEN
        status = new
    assert status in AnnouncementStatus


def test_a_follower_announcement_is_never_marked_posted_by_hand() -> None:
    with pytest.raises(RuleViolation) as exc:
        live.announcement_next("ann_x", AnnouncementStatus.OPEN, AnnouncementAction.POST, is_group=False)
    assert exc.value.rule == "LIVE-4"
    assert live.announcement_next("ann_x", AnnouncementStatus.OPEN, AnnouncementAction.POST,
                                  is_group=True) is AnnouncementStatus.POSTED


def test_the_state_follows_the_push() -> None:
    open_ = AnnouncementStatus.OPEN
    assert live.announcement_state(open_, False, "scheduled", {})[0] == "scheduled"
    assert live.announcement_state(open_, False, "sending", {"pending": 3})[0] == "sending"
    assert live.announcement_state(open_, False, "done", {"sent": 5, "failed": 1})[0] == "sent"
    assert live.announcement_state(open_, False, "done", {"failed": 2})[0] == "failed"
    assert live.announcement_state(open_, False, "done", {"skipped": 4})[0] == "skipped"
    assert live.announcement_state(open_, False, "cancelled", {})[0] == "cancelled"
    assert live.announcement_state(AnnouncementStatus.WITHDRAWN, False, "cancelled", {})[0] == "withdrawn"
    assert live.announcement_state(open_, True, None, {})[0] == "to_post"
    assert live.announcement_state(AnnouncementStatus.POSTED, True, None, {})[0] == "posted"


def test_live_3_sent_before_the_start_and_stale_when_moved_or_started() -> None:
    live.ensure_sent_before_start(START - timedelta(minutes=1), START)
    with pytest.raises(RuleViolation) as exc:
        live.ensure_sent_before_start(START, START)
    assert exc.value.rule == "LIVE-3"
    early = START - timedelta(days=1)
    assert not live.is_stale(LiveStatus.SCHEDULED, START, START, early)
    assert live.is_stale(LiveStatus.SCHEDULED, START + timedelta(days=1), START, early)  # rescheduled
    assert live.is_stale(LiveStatus.CANCELLED, START, START, early)
    assert live.is_stale(LiveStatus.SCHEDULED, START, START, START)  # the start has come


def test_copy_for_followers_and_groups() -> None:
    text = copy.render(copy.FOLLOWERS_TEMPLATE, copy.variables(FACTS, "announce"), limit=600, what="x")
    assert text.startswith("直播预告：11月5日 20:00（周四），李明医生做客抖音「深大附院心内科」直播间")
    moved = copy.render(copy.FOLLOWERS_TEMPLATE, copy.variables(FACTS, "reschedule", START - timedelta(days=1)),
                        limit=600, what="x")
    assert moved.startswith("直播改期：原定11月4日 20:00的直播调整到11月5日 20:00")
    group = copy.render(copy.GROUP_TEMPLATE, copy.variables(FACTS, "cancel", None, {"name": "群", "owner": "王"}),
                        limit=600, what="x")
    assert group == "各位群友好！原定11月5日 20:00的「高血压直播答疑」直播取消了，给大家带来不便，敬请谅解。"


def test_copy_templates_are_strict() -> None:
    with pytest.raises(InvalidInput, match="不存在的变量"):
        copy.check_template("{{ title }}，主讲：{{ speaker }}", "社群预告")
    with pytest.raises(InvalidInput, match="写法有误"):
        copy.check_template("{{ title ", "社群预告")
    with pytest.raises(InvalidInput, match="超过"):
        copy.check_template("{{ title * 100 }}", "社群预告")
    copy.check_template("{{ group.name }}的朋友们：{{ when }} {{ title }}", "社群预告")


def test_operator_text_stays_literal_in_template_fields() -> None:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined)
    for text in ("高血压{{ patient.name }}答疑", "问答{% raw %}", "普通标题", "it's \\ \"ok\" }}"):
        assert env.from_string(literal(text)).render() == text
