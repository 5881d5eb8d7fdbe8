"""Reading the platforms' exports: numbers as printed (1.2万), dates, headers, all-or-nothing errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from content.domain import calendar as cal
from content.domain import exports
from content.domain import live
from content.domain.calendar import EpisodeAction, EpisodeStatus
from content.domain.exports import ExportKind, ExportRejected


@pytest.mark.parametrize(("raw", "value"), [
    ("12,345", 12345), ("1.2万", 12000), ("3.4w", 34000), ("1.1亿", 110_000_000), ("--", 0), ("", 0), (None, 0),
    (987, 987), (12.0, 12), ("10万+", 100000), ("0.5万", 5000), ("2k", 2000), ("1，024", 1024),
])
def test_counts_as_the_platforms_print_them(raw: object, value: int) -> None:
    assert exports.parse_count(raw) == value


@pytest.mark.parametrize("raw", ["abc", "-3", "1.2.3万", "万", "12%", True])
def test_bad_counts_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        exports.parse_count(raw)


@given(st.integers(min_value=0, max_value=10**9))
def test_counts_round_trip_with_thousands_separators(n: int) -> None:
    assert exports.parse_count(f"{n:,}") == n


@pytest.mark.parametrize("raw", ["2026-11-03 20:00:00", "2026/11/03 20:00", "2026年11月3日 20:00",
                                 datetime(2026, 11, 3, 20, 0)])
def test_local_times_become_utc(raw: object) -> None:
    assert exports.parse_datetime(raw) == datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def test_excel_serial_dates_and_minutes() -> None:
    assert exports.parse_date(46329) == date(2026, 11, 3)
    assert [exports.parse_minutes(x) for x in ("90", "1小时30分", "01:30:00", "1h30m", 75)] == [90, 90, 90, 90, 75]


def test_headers_of_each_platform_are_recognised_and_missing_ones_named() -> None:
    header = ["作品名称", "发布时间", "播放量", "点赞量", "评论量", "分享量", "粉丝增量"]
    assert exports.column_map("douyin", ExportKind.VIDEO, header)["followers"] == 6
    with pytest.raises(InvalidInput, match="播放量"):
        exports.column_map("douyin", ExportKind.VIDEO, ["作品名称", "发布时间", "点赞量", "评论量", "分享量", "粉丝增量"])
    with pytest.raises(InvalidInput):
        exports.column_map("wecom", ExportKind.VIDEO, header)


def test_every_bad_row_is_listed_and_nothing_is_returned() -> None:
    header = ["视频描述", "发表时间", "播放量", "喜欢", "评论", "转发", "新增关注"]
    rows = [(2, ["好视频", "2026-11-03 20:00", "1.2万", "300", "20", "15", "8"]),
            (3, ["", "2026-11-04 20:00", "abc", "1", "1", "1", "1"]),
            (4, ["第三条", "昨天", "1", "1", "1", "1", "1"])]
    with pytest.raises(ExportRejected) as caught:
        exports.parse_rows("channels", ExportKind.VIDEO, header, rows)
    assert caught.value.row_errors == ["第 3 行：「视频描述」不能为空", "第 3 行：「播放量」的值「abc」不是有效的数字",
                                       "第 4 行：「发表时间」的值「昨天」不是有效的时间"]
    records = exports.parse_rows("channels", ExportKind.VIDEO, header, rows[:1])
    assert records[0][1]["plays"] == 12000


def test_episode_states_move_only_by_named_transitions() -> None:
    s = EpisodeStatus.PLANNED
    for action in (EpisodeAction.SHOOT, EpisodeAction.EDIT, EpisodeAction.SEND_BACK, EpisodeAction.EDIT,
                   EpisodeAction.REVIEW, EpisodeAction.PUBLISH, EpisodeAction.PUBLISH):
        s = cal.next_status("epi_1", s, action)
    assert s is EpisodeStatus.PUBLISHED
    with pytest.raises(RuleViolation) as caught:
        cal.next_status("epi_1", EpisodeStatus.EDITED, EpisodeAction.PUBLISH)
    assert caught.value.rule == "CAL-2"
    with pytest.raises(IllegalTransition):
        cal.next_status("epi_1", EpisodeStatus.PLANNED, EpisodeAction.REVIEW)
    with pytest.raises(RuleViolation):
        cal.ensure_medical_reviewer(False)


@given(st.lists(st.sampled_from(list(EpisodeAction)), max_size=12))
def test_no_path_publishes_without_a_review(actions: list[EpisodeAction]) -> None:
    s, reviewed = EpisodeStatus.PLANNED, False
    for action in actions:
        try:
            new = cal.next_status("epi_1", s, action)
        except (IllegalTransition, RuleViolation):
            continue
        reviewed = reviewed or action is EpisodeAction.REVIEW
        if new is EpisodeStatus.PUBLISHED:
            assert reviewed
        s = new


def test_export_titles_match_episodes_despite_hashtags() -> None:
    assert cal.title_matches("高血压的三个误区", "高血压的三个误区！#健康科普 #心内科 @深圳大学附属医院")
    assert not cal.title_matches("高血压的三个误区", "糖尿病饮食怎么吃 #健康科普")


def test_live_plans_and_announcements() -> None:
    now = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    later = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    with pytest.raises(RuleViolation, match="开播时间"):
        live.validate_plan("高血压答疑", now, 60, "一、血压怎么量；二、药怎么吃；三、答疑互动环节", now)
    with pytest.raises(RuleViolation, match="计划"):
        live.validate_plan("高血压答疑", later, 60, "答疑", now)
    with pytest.raises(RuleViolation):
        live.ensure_may_announce(live.LiveStatus.LIVE, later, now)
