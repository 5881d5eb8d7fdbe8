"""opsctl lecture: 名医讲堂 for operations staff — list, show, publish, disable, enable."""

from __future__ import annotations

from typing import Annotated

import typer

from content.domain.lectures import LectureStatus
from content.services import lectures as lecture_service
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="名医讲堂：查看、发布、停用与启用医生的图文和音频讲堂。\n\n示例：opsctl lecture list --status published",
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
