"""opsctl lecture: 名医讲堂 for operations staff — list, show, publish, disable, enable; moderate
comments; tips, their refunds and income."""

from __future__ import annotations

from typing import Annotated

import typer

from content.domain.lectures import CommentStatus, LectureStatus
from content.services import lecture_engagement as engage
from content.services import lectures as lecture_service
from opsctl.cli.commands.content import parse_day
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="名医讲堂：查看、发布、停用与启用医生的图文和音频讲堂；审核评论；赞赏与退款。\n\n示例：opsctl lecture list --status published",
                  no_args_is_help=True)

COLUMNS = [("public_id", "编号"), ("title", "标题"), ("category", "分类"), ("kind", "类型"), ("status", "状态"),
           ("author", "作者"), ("version", "最新版本"), ("published_version", "已发布版本"), ("pending_edit", "有未发布修改"),
           ("updated_at", "更新时间")]
IdArg = Annotated[str, typer.Argument(help="讲堂编号，如 lec_...")]


@app.command("list")
def list_(
    category: Annotated[str | None, typer.Option(help="分类，如 心血管")] = None,
    status: Annotated[LectureStatus | None, typer.Option(help="状态：draft、published 或 disabled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="最多显示条数")] = 200,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出讲堂（含草稿与已停用，显示最新版本）。

    示例：opsctl lecture list --category 心血管 --json
    """
    rows = lecture_service.list_lectures(container().uow(), operator(), category=category, status=status, limit=limit)
    render(rows, COLUMNS, choose(fmt, as_json), title="名医讲堂")


def _show(view: lecture_service.LectureView, fmt: Format) -> None:
    data = {k: getattr(view, k) for k, _ in COLUMNS} | {"audio_seconds": view.audio_seconds, "body": view.body}
    render_object(data, dict(COLUMNS) | {"audio_seconds": "音频时长（秒）", "body": "正文"}, fmt)


@app.command("show")
def show(public_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """查看一条讲堂的最新版本。

    示例：opsctl lecture show lec_0123abcd --json
    """
    _show(lecture_service.get_lecture(container().uow(), operator(), public_id), choose(fmt, as_json))


@app.command("publish")
def publish(public_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """发布草稿，或重新发布已修改的讲堂（患者看到最新版本）。

    示例：opsctl lecture publish lec_0123abcd
    """
    _show(lecture_service.publish_lecture(container().uow(), operator(), public_id), choose(fmt, as_json))


@app.command("disable")
def disable(public_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """停用：患者不再看到这条讲堂（可再启用）。

    示例：opsctl lecture disable lec_0123abcd
    """
    _show(lecture_service.disable_lecture(container().uow(), operator(), public_id), choose(fmt, as_json))


@app.command("enable")
def enable(public_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """启用已停用的讲堂。

    示例：opsctl lecture enable lec_0123abcd
    """
    _show(lecture_service.enable_lecture(container().uow(), operator(), public_id), choose(fmt, as_json))


COMMENT_COLUMNS = [("public_id", "编号"), ("lecture_id", "讲堂"), ("author", "患者"), ("body", "评论"),
                   ("status_label", "状态"), ("reject_reason", "驳回原因"), ("created_at", "时间")]
TIP_COLUMNS = [("tip_id", "编号"), ("lecture_id", "讲堂"), ("title", "标题"), ("author", "作者"),
               ("amount_fen", "金额（分）"), ("status", "状态"), ("paid_at", "支付时间")]


@app.command("comments")
def comments(
    status: Annotated[CommentStatus | None, typer.Option(help="pending（待审核，默认）、approved 或 rejected")] = CommentStatus.PENDING,
    lecture: Annotated[str | None, typer.Option(help="只看一条讲堂 lec_...")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """评论审核队列（患者姓名已脱敏）。

    示例：opsctl lecture comments --status pending --json
    """
    uow, who = container().uow(), operator()
    rows = engage.list_comments(uow, who, lecture, status=status) if lecture else engage.moderation_queue(uow, who, status)
    render(rows, COMMENT_COLUMNS, choose(fmt, as_json), title="讲堂评论")


@app.command("approve")
def approve(comment_id: Annotated[str, typer.Argument(help="评论编号 cmt_...")],
            fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """通过评论（其他患者可见）。

    示例：opsctl lecture approve cmt_0123abcd
    """
    render([engage.moderate_comment(container().uow(), operator(), comment_id, approve=True)], COMMENT_COLUMNS,
           choose(fmt, as_json))


@app.command("reject")
def reject(comment_id: Annotated[str, typer.Argument(help="评论编号 cmt_...")],
           reason: Annotated[str, typer.Option(help="驳回原因，如 含广告")],
           fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """驳回评论（写明原因，仅作者本人可见）。

    示例：opsctl lecture reject cmt_0123abcd --reason 含广告
    """
    render([engage.moderate_comment(container().uow(), operator(), comment_id, approve=False, reason=reason)],
           COMMENT_COLUMNS, choose(fmt, as_json))


@app.command("stats")
def stats(public_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """一条讲堂的点赞、分享、评论与赞赏。

    示例：opsctl lecture stats lec_0123abcd --json
    """
    view = engage.engagement(container().uow(), operator(), public_id)
    render_object({"lecture_id": view.lecture_id, "likes": view.likes, "shares": view.shares,
                   "comments": view.comments, "tips": view.tips, "tips_fen": view.tips_fen},
                  {"lecture_id": "讲堂", "likes": "点赞", "shares": "分享", "comments": "评论（已通过）",
                   "tips": "赞赏笔数", "tips_fen": "赞赏净额（分）"}, choose(fmt, as_json))


@app.command("tips")
def tips(lecture: Annotated[str | None, typer.Option(help="只看一条讲堂 lec_...")] = None,
         fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """赞赏记录。

    示例：opsctl lecture tips --lecture lec_0123abcd
    """
    render(engage.list_tips(container().uow(), operator(), lecture_id=lecture), TIP_COLUMNS, choose(fmt, as_json),
           title="赞赏")


@app.command("refund-tip")
def refund_tip(tip_id: Annotated[str, typer.Argument(help="赞赏编号 tip_...")],
               reason: Annotated[str, typer.Option(help="退款原因")],
               fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """全额退还一笔已支付的赞赏（退款由退款任务发往支付平台）。

    示例：opsctl lecture refund-tip tip_0123abcd --reason 患者误操作
    """
    render([engage.refund_tip(container().uow(), operator(), tip_id, reason)], TIP_COLUMNS, choose(fmt, as_json))


@app.command("income")
def income(
    since: Annotated[str, typer.Option(help="开始日期 YYYY-MM-DD（含）")],
    until: Annotated[str, typer.Option(help="结束日期 YYYY-MM-DD（不含）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """赞赏收入：期间支付的赞赏，按讲堂汇总（已退款的扣除）。

    示例：opsctl lecture income --since 2026-11-01 --until 2026-12-01
    """
    rows = engage.tips_income(container().uow(), operator(), parse_day(since), parse_day(until))
    render(rows, [("lecture_id", "讲堂"), ("title", "标题"), ("author", "作者"), ("tips", "笔数"),
                  ("paid_fen", "支付（分）"), ("refunded_fen", "退款（分）"), ("net_fen", "净额（分）")],
           choose(fmt, as_json), title="赞赏收入")
