"""opsctl content: 科普视频发布日历 — series, episodes, platform posts, the calendar, imported platform statistics."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.time import SHANGHAI
from content.domain import calendar as cal_rules
from content.domain.calendar import EpisodeStatus, Platform
from content.domain.exports import ExportKind, ExportRejected
from content.services import calendar as cal
from content.services import platform_data as data
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="科普内容运营：系列与剧集、各平台发布日历、导入平台导出的数据。\n\n示例：opsctl content calendar --month 2026-11",
                  no_args_is_help=True)
series_app = typer.Typer(help="科普视频系列。\n\n示例：opsctl content series list", no_args_is_help=True)
episode_app = typer.Typer(help="剧集：计划 → 已拍摄 → 已剪辑 → 已医学审核 → 已发布。\n\n示例：opsctl content episode list --status edited",
                          no_args_is_help=True)
post_app = typer.Typer(help="平台发布排期：把剧集排到抖音、视频号的日历上并发布。\n\n示例：opsctl content post plan epi_0123 --platform douyin --at \"2026-11-03 20:00\"",
                       no_args_is_help=True)
stats_app = typer.Typer(help="平台数据：导入抖音、视频号、企业微信导出的统计表，查看汇总。\n\n示例：opsctl content stats import 作品数据.xlsx --kind video --platform douyin",
                        no_args_is_help=True)
app.add_typer(series_app, name="series")
app.add_typer(episode_app, name="episode")
app.add_typer(post_app, name="post")
app.add_typer(stats_app, name="stats")

SERIES_COLUMNS = [("public_id", "编号"), ("title", "系列"), ("department", "科室"), ("episodes", "集数"),
                  ("published", "已发布"), ("description", "简介")]
EPISODE_COLUMNS = [("public_id", "编号"), ("series", "系列"), ("number", "集"), ("title", "标题"),
                   ("status_label", "状态"), ("reviewer", "审核医生"), ("review_note", "审核意见"),
                   ("platforms", "平台")]
POST_COLUMNS = [("public_id", "编号"), ("episode_id", "剧集"), ("title", "标题"), ("platform", "平台"),
                ("planned_at", "计划时间"), ("published_at", "发布时间"), ("external_id", "平台作品 ID")]
IMPORT_COLUMNS = [("import_id", "导入批次"), ("kind", "类型"), ("source", "来源"), ("rows", "行数"),
                  ("inserted", "新增"), ("updated", "更新"), ("unchanged", "未变"), ("matched", "已匹配"),
                  ("already_imported", "此前已导入")]


def parse_local(text: str) -> datetime:
    """``2026-11-03 20:00`` in Shanghai time → aware datetime."""
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    raise InvalidInput(f"时间格式应为 YYYY-MM-DD HH:MM（北京时间），实际是 {text}", field="at")


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"日期格式应为 YYYY-MM-DD，实际是 {text}", field="date") from None


@series_app.command("add")
def series_add(
    title: Annotated[str, typer.Argument(help="系列名称")],
    department: Annotated[str, typer.Option(help="科室，如 心血管内科")],
    description: Annotated[str, typer.Option(help="简介")] = "",
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建科普视频系列。

    示例：opsctl content series add 心内科说血压 --department 心血管内科
    """
    render([cal.create_series(container().uow(), operator(), title, department, description)], SERIES_COLUMNS,
           choose(fmt, as_json), title="已新建系列")


@series_app.command("list")
def series_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出系列及其集数。

    示例：opsctl content series list --json
    """
    render(cal.list_series(container().uow(), operator()), SERIES_COLUMNS, choose(fmt, as_json), title="科普系列")


@episode_app.command("add")
def episode_add(
    series_id: Annotated[str, typer.Argument(help="系列编号 ser_...")],
    title: Annotated[str, typer.Argument(help="本集标题")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """计划新的一集（自动编号）。

    示例：opsctl content episode add ser_0123 高血压的三个误区
    """
    render([cal.add_episode(container().uow(), operator(), series_id, title)], EPISODE_COLUMNS, choose(fmt, as_json))


@episode_app.command("list")
def episode_list(
    series_id: Annotated[str | None, typer.Option("--series", help="系列编号")] = None,
    status: Annotated[EpisodeStatus | None, typer.Option(help="planned、shot、edited、reviewed、published")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出剧集及其状态和各平台排期。

    示例：opsctl content episode list --status edited
    """
    render(cal.list_episodes(container().uow(), operator(), series_id=series_id, status=status), EPISODE_COLUMNS,
           choose(fmt, as_json), title="剧集")


@episode_app.command("shot")
def episode_shot(episode_id: Annotated[str, typer.Argument(help="剧集编号 epi_...")],
                 fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """标记已拍摄。

    示例：opsctl content episode shot epi_0123
    """
    render([cal.mark_shot(container().uow(), operator(), episode_id)], EPISODE_COLUMNS, choose(fmt, as_json))


@episode_app.command("edited")
def episode_edited(
    episode_id: Annotated[str, typer.Argument(help="剧集编号 epi_...")],
    video: Annotated[str | None, typer.Option(help="成片路径（opsctl video render 的输出）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """标记已剪辑，等待医生做医学审核（审核在医生端完成）。

    示例：opsctl content episode edited epi_0123 --video out/ep1.mp4
    """
    render([cal.mark_edited(container().uow(), operator(), episode_id, video)], EPISODE_COLUMNS, choose(fmt, as_json))


@post_app.command("plan")
def post_plan(
    episode_id: Annotated[str, typer.Argument(help="剧集编号 epi_...")],
    platform: Annotated[Platform, typer.Option(help="douyin（抖音）或 channels（视频号）")],
    at: Annotated[str, typer.Option(help="计划发布时间（北京时间），如 \"2026-11-03 20:00\"")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """把剧集排到某个平台的日历上（每个平台一次）。

    示例：opsctl content post plan epi_0123 --platform douyin --at "2026-11-03 20:00"
    """
    render([cal.plan_post(container().uow(), operator(), episode_id, platform, parse_local(at))], POST_COLUMNS,
           choose(fmt, as_json))


@post_app.command("reschedule")
def post_reschedule(
    post_id: Annotated[str, typer.Argument(help="排期编号 pst_...")],
    at: Annotated[str, typer.Option(help="新的计划时间（北京时间）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """改期（已发布的不能改）。

    示例：opsctl content post reschedule pst_0123 --at "2026-11-04 20:00"
    """
    render([cal.reschedule_post(container().uow(), operator(), post_id, parse_local(at))], POST_COLUMNS,
           choose(fmt, as_json))


@post_app.command("publish")
def post_publish(
    post_id: Annotated[str, typer.Argument(help="排期编号 pst_...")],
    external_id: Annotated[str | None, typer.Option(help="平台上的作品 ID（用于匹配导出数据）")] = None,
    at: Annotated[str | None, typer.Option(help="实际发布时间（北京时间，默认现在）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """记录已在平台发布（须已通过医学审核）。

    示例：opsctl content post publish pst_0123 --external-id 7301234567890
    """
    render([cal.publish_post(container().uow(), operator(), post_id, external_id=external_id,
                             published_at=parse_local(at) if at else None)], POST_COLUMNS, choose(fmt, as_json))


@app.command("calendar")
def calendar(
    month: Annotated[str | None, typer.Option(help="月份 YYYY-MM（默认本月）")] = None,
    platform: Annotated[Platform | None, typer.Option(help="只看一个平台：douyin 或 channels")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """发布日历：某月每天各平台的视频发布与直播。

    示例：opsctl content calendar --month 2026-11 --platform douyin
    """
    c = container()
    if month:
        try:
            year, mon = (int(x) for x in month.split("-"))
        except ValueError:
            raise InvalidInput(f"月份格式应为 YYYY-MM，实际是 {month}", field="month") from None
    else:
        today = c.clock.now().astimezone(SHANGHAI).date()
        year, mon = today.year, today.month
    since, until = cal_rules.month_range(year, mon)
    entries = cal.calendar(c.uow(), operator(), since, until, platform=platform)
    rows = [{"day": e.day, "weekday": "一二三四五六日"[e.day.weekday()], "platform": Platform(e.platform).label,
             "kind": "视频" if e.kind == "video" else "直播", "title": e.title, "state": e.state, "ref": e.ref}
            for e in entries]
    render(rows, [("day", "日期"), ("weekday", "星期"), ("platform", "平台"), ("kind", "类型"), ("title", "标题"),
                  ("state", "状态"), ("ref", "编号")], choose(fmt, as_json), title=f"{year} 年 {mon} 月发布日历")


@stats_app.command("import")
def stats_import(
    file: Annotated[Path, typer.Argument(help="平台导出的 .xlsx 或 .csv", exists=True, dir_okay=False)],
    kind: Annotated[ExportKind, typer.Option(help="video（作品数据）、live（直播数据）或 community（社群数据）")],
    platform: Annotated[str, typer.Option(help="douyin、channels；社群数据为 wecom")],
    as_of: Annotated[str | None, typer.Option(help="导出日期 YYYY-MM-DD（作品数据为截至该日的累计，默认今天）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """导入平台导出的统计表：全部正确才导入，否则逐行列出错误；同一文件重复导入不会重复计数。

    示例：opsctl content stats import 抖音作品数据.xlsx --kind video --platform douyin --as-of 2026-11-30
    """
    try:
        result = data.import_export(container().uow(), operator(), kind, platform.strip().lower(), file,
                                    as_of=parse_day(as_of) if as_of else None)
    except ExportRejected as exc:
        for line in exc.row_errors[:200]:
            typer.echo(line, err=True)
        if len(exc.row_errors) > 200:
            typer.echo(f"……另有 {len(exc.row_errors) - 200} 处错误", err=True)
        raise
    render([result], IMPORT_COLUMNS, choose(fmt, as_json), title="已导入" if not result.already_imported else "此文件已导入过")


@stats_app.command("imports")
def stats_imports(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """最近的导入批次。

    示例：opsctl content stats imports --json
    """
    render(data.list_imports(container().uow(), operator()), IMPORT_COLUMNS, choose(fmt, as_json), title="导入记录")


@stats_app.command("summary")
def stats_summary(
    since: Annotated[str, typer.Option(help="开始日期 YYYY-MM-DD（含）")],
    until: Annotated[str, typer.Option(help="结束日期 YYYY-MM-DD（不含）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """各平台汇总：期间发布的作品的播放、点赞、评论、分享、涨粉，及期间直播。

    示例：opsctl content stats summary --since 2026-11-01 --until 2026-12-01
    """
    c, who = container(), operator()
    start, end = parse_day(since), parse_day(until)
    published = {p.platform: p for p in data.content_published(c.uow(), who, start, end)}
    totals = {t.platform: t for t in data.platform_totals(c.uow(), who, start, end)}
    lives = {t.platform: t for t in data.live_totals(c.uow(), who, start, end)}
    rows = []
    for p in sorted(set(published) | set(totals) | set(lives)):
        t, lv = totals.get(p), lives.get(p)
        rows.append({"platform": Platform(p).label if p in Platform._value2member_map_ else p,
                     "posts": published[p].posts if p in published else 0, "works": t.works if t else 0,
                     "plays": t.plays if t else 0, "likes": t.likes if t else 0, "comments": t.comments if t else 0,
                     "shares": t.shares if t else 0, "followers": (t.followers if t else 0) + (lv.followers if lv else 0),
                     "lives": lv.sessions if lv else 0, "live_viewers": lv.viewers if lv else 0})
    render(rows, [("platform", "平台"), ("posts", "发布数"), ("works", "有数据作品"), ("plays", "播放"), ("likes", "点赞"),
                  ("comments", "评论"), ("shares", "分享"), ("followers", "涨粉"), ("lives", "直播场次"),
                  ("live_viewers", "直播观看人数")], choose(fmt, as_json), title=f"平台数据 {start} ～ {end}")
