"""opsctl patients: real-name patients, always shown masked."""

from __future__ import annotations

from typing import Annotated

import typer

from clinical_core.services import patients as patient_service
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="患者（实名，输出一律脱敏）。\n\n示例：opsctl patients find --phone 13800138000",
                  no_args_is_help=True)

COLUMNS = [("public_id", "编号"), ("name", "姓名"), ("sex", "性别"), ("age", "年龄"), ("phone", "手机"),
           ("id_card", "身份证号"), ("address", "地址"), ("has_wechat", "已关注公众号")]


@app.command("find")
def find(
    phone: Annotated[str | None, typer.Option(help="手机号")] = None,
    id_card: Annotated[str | None, typer.Option("--id-card", help="身份证号")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按手机号或身份证号查找患者（查询会记入审计日志）。

    示例：opsctl patients find --phone 13800138000 --json
    """
    rows = patient_service.find_patients(container().uow(), operator(), phone=phone, id_card=id_card)
    render(rows, COLUMNS, choose(fmt, as_json), title="查找结果", empty="未找到匹配的患者")


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示人数")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="跳过前多少人")] = 0,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """分页列出患者。

    示例：opsctl patients list --limit 50 --offset 100 --format csv
    """
    rows = patient_service.list_patients(container().uow(), operator(), limit=limit, offset=offset)
    render(rows, COLUMNS, choose(fmt, as_json), title="患者")


@app.command("add")
def add(
    name: Annotated[str, typer.Option(help="真实姓名")],
    id_card: Annotated[str, typer.Option("--id-card", help="18 位身份证号")],
    phone: Annotated[str, typer.Option(help="手机号")],
    address: Annotated[str | None, typer.Option(help="住址")] = None,
    district: Annotated[str | None, typer.Option(help="行政区划代码，如 440305")] = None,
    health_card: Annotated[str | None, typer.Option("--health-card", help="就诊卡号")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """实名登记一位患者（个人信息加密保存）。

    示例：opsctl patients add --name 张三 --id-card 11010519491231002X --phone 13800138000
    """
    view = patient_service.register_patient(
        container().uow(), operator(),
        patient_service.NewPatient(name=name, id_card=id_card, phone=phone, address=address,
                                   district_code=district, health_card=health_card),
    )
    render([view], COLUMNS, choose(fmt, as_json), title="已登记")
