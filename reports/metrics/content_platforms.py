"""内容运营 (continued): the publishing calendar, the platforms' exported statistics, live broadcasts
and lecture tips (``content.persistence.models``; meanings as in ``content.services.platform_data``
and ``content.services.lecture_engagement``).

- Posts count at their publishing instant per platform; an episode counts once per period however
  many platforms carried it.
- Plays and likes are the platforms' cumulative totals of the works *published in the period*,
  each work with its latest export (the exports are cumulative snapshots, so summing days would
  count a play many times). A report re-generated after a later import shows the newer totals.
- Live viewers: the viewers of the broadcasts started in the period.
- Tips net income: succeeded tips at ``paid_at`` minus succeeded tip refunds at ``settled_at``
  (like every income metric); a tip belongs to the lecture author and the author's department.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.orm import aliased

from clinical_core.persistence.models import DepartmentRow, StaffRow
from content.persistence.models import (
    LectureTipRefundRow,
    LectureTipRow,
    LiveStatRow,
    PostRow,
    VideoStatRow,
)
from reports.metrics.registry import Agg, Metric, Unit, register

CONTENT = "内容运营"


def _posts() -> Select:
    return (select(PostRow.published_at.label("at"), PostRow.episode_id.label("value"),
                    PostRow.platform.label("platform")).where(PostRow.published_at.is_not(None)))


register(Metric(
    "content_posts_published", "短视频发布（平台条数）", Unit.COUNT, CONTENT, Agg.COUNT, _posts, ("platform",),
    better="up", unit_label="条",
    action="按发布日历在抖音、视频号、B 站同步发布，每个平台每周至少 2 条"))

register(Metric(
    "content_episodes_published", "短视频发布（节目集数）", Unit.COUNT, CONTENT, Agg.COUNT_DISTINCT, _posts, ("platform",),
    better="up", unit_label="集",
    action="与试点科室确定每月选题，提前两周完成录制和审核，保证节目按期上线"))


def _latest_stats(column: object) -> Select:
    latest = (select(VideoStatRow.platform.label("platform"), VideoStatRow.work_key.label("work_key"),
                     func.max(VideoStatRow.as_of).label("as_of"))
              .group_by(VideoStatRow.platform, VideoStatRow.work_key).subquery("latest"))
    return (select(VideoStatRow.published_at.label("at"), column.label("value"),  # type: ignore[attr-defined]
                   VideoStatRow.platform.label("platform"))
            .join(latest, (latest.c.platform == VideoStatRow.platform) & (latest.c.work_key == VideoStatRow.work_key)
                  & (latest.c.as_of == VideoStatRow.as_of)))


register(Metric(
    "platform_plays", "平台播放量", Unit.COUNT, CONTENT, Agg.SUM, lambda: _latest_stats(VideoStatRow.plays), ("platform",),
    better="up", unit_label="次",
    action="把播放量高的选题做成系列，在视频结尾加公众号关注引导和问诊入口"))

register(Metric(
    "platform_likes", "平台点赞", Unit.COUNT, CONTENT, Agg.SUM, lambda: _latest_stats(VideoStatRow.likes), ("platform",),
    better="up", unit_label="个",
    action="在视频前 5 秒点明患者关心的问题，评论区由运营置顶答疑并引导点赞"))

register(Metric(
    "live_viewers", "直播观看人数", Unit.COUNT, CONTENT, Agg.SUM,
    lambda: select(LiveStatRow.started_at.label("at"), LiveStatRow.viewers.label("value"),
                   LiveStatRow.platform.label("platform")),
    ("platform",), better="up", unit_label="人",
    action="直播前 24 小时和 1 小时分别在公众号和患者社群发布预告，固定每周同一时段开播"))


def _tips() -> Select:
    author, dept, rauthor, rdept = aliased(StaffRow), aliased(DepartmentRow), aliased(StaffRow), aliased(DepartmentRow)
    paid = (select(LectureTipRow.paid_at.label("at"), LectureTipRow.amount_fen.label("value"),
                   dept.code.label("department"), author.name.label("doctor"))
            .select_from(LectureTipRow).join(author, author.id == LectureTipRow.author_staff_id)
            .outerjoin(dept, dept.id == author.department_id).where(LectureTipRow.status == "succeeded"))
    tip = aliased(LectureTipRow)
    refunded = (select(LectureTipRefundRow.settled_at.label("at"), (-LectureTipRefundRow.amount_fen).label("value"),
                       rdept.code.label("department"), rauthor.name.label("doctor"))
                .select_from(LectureTipRefundRow).join(tip, tip.id == LectureTipRefundRow.tip_id)
                .join(rauthor, rauthor.id == tip.author_staff_id)
                .outerjoin(rdept, rdept.id == rauthor.department_id).where(LectureTipRefundRow.status == "succeeded"))
    return select(union_all(paid, refunded).subquery("tips"))


register(Metric(
    "lecture_tips_net_fen", "名医讲堂赞赏净收入", Unit.FEN, CONTENT, Agg.SUM, _tips, ("department", "doctor"),
    better="up",
    action="在讲堂结尾感谢赞赏并说明赞赏用途（如患者教育基金），每月公示使用情况"))
