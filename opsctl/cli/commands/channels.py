"""opsctl channels: promotion channels (posters, doctors' cards, package cards, articles, events)."""

from __future__ import annotations

from typing import Annotated

import typer

from campaigns.services import channels as service
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="推广渠道：每个渠道拥有自己的二维码。\n\n示例：opsctl channels add --code dept-cardio --kind department_poster --name 心内科候诊区海报",
                  no_args_is_help=True)
COLUMNS = [("code", "编码"), ("kind_label", "类型"), ("name", "名称"), ("qr_codes", "二维码数"), ("public_id", "编号")]


@app.command("add")
def add(
    code: Annotated[str, typer.Option(help="渠道编码（小写字母、数字、-、_）")],
    kind: Annotated[str, typer.Option(help="department_poster|doctor_card|package_card|article|event")],
    name: Annotated[str, typer.Option(help="渠道名称")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建推广渠道。

    示例：opsctl channels add --code dept-cardio --kind department_poster --name 心内科候诊区海报
    """
    view = service.create_channel(container().uow(), operator(), code, kind, name)
    render([view], COLUMNS, choose(fmt, as_json), title="已创建渠道")


@app.command("list")
def list_(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出全部渠道及其二维码数量。

    示例：opsctl channels list --json
    """
    render(service.list_channels(container().uow(), operator()), COLUMNS, choose(fmt, as_json), title="渠道")
