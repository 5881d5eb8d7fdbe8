"""opsctl users: API accounts and bearer tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.services import accounts
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, info, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="API 账号与访问令牌。\n\n示例：opsctl users add --role doctor --username dr.li --name 李明",
                  no_args_is_help=True)

COLUMNS = [("username", "用户名"), ("role", "角色"), ("display_name", "姓名"), ("active", "启用"),
           ("public_id", "账号编号"), ("staff_id", "员工编号"), ("patient_id", "患者编号"), ("created_at", "创建时间")]


@app.command("add")
def add(
    role: Annotated[Role, typer.Option(help="角色：doctor、pharmacist、nurse、admin、operations、customer_service、patient")],
    username: Annotated[str, typer.Option(help="登录用户名（小写字母、数字、._-）")],
    name: Annotated[str | None, typer.Option(help="员工姓名（员工账号必填）")] = None,
    patient: Annotated[str | None, typer.Option(help="患者编号 pat_...（患者账号必填）")] = None,
    dept: Annotated[str | None, typer.Option(help="科室编码，如 CARD")] = None,
    title: Annotated[str | None, typer.Option(help="职称，如 主治医师、主管药师、护师")] = None,
    licence: Annotated[str | None, typer.Option(help="执业证书编号")] = None,
    practising_since: Annotated[
        datetime | None, typer.Option("--practising-since", formats=["%Y-%m-%d"], help="独立执业起始日期")
    ] = None,
    filed: Annotated[bool, typer.Option("--filed", help="已完成互联网医院执业备案")] = False,
    may_prescribe: Annotated[bool, typer.Option("--may-prescribe", help="具有处方权")] = False,
    phone: Annotated[str | None, typer.Option(help="手机号（加密保存）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建账号：员工账号连同员工档案与资质一起建立；患者账号关联已登记的患者。

    示例：opsctl users add --role doctor --username dr.li --name 李明 --dept CARD --title 主治医师 --licence 110440300001234 --practising-since 2015-07-01 --filed --may-prescribe
    """
    uow, who = container().uow(), operator()
    if role is Role.PATIENT:
        if not patient:
            raise InvalidInput("患者账号需要 --patient 指定患者编号", field="patient")
        view = accounts.add_patient_account(uow, who, username, patient)
    else:
        if not name:
            raise InvalidInput("员工账号需要 --name 指定姓名", field="name")
        view = accounts.add_staff_account(uow, who, accounts.NewStaffAccount(
            username=username, role=role, name=name, department_code=dept, title=title, licence_no=licence,
            practising_since=practising_since.date() if practising_since else None,
            filing=FilingStatus.FILED if filed else FilingStatus.NONE, may_prescribe=may_prescribe, phone=phone,
        ))
    render([view], COLUMNS, choose(fmt, as_json), title="已创建账号")


@app.command("list")
def list_(
    role: Annotated[Role | None, typer.Option(help="只看某个角色")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出账号。

    示例：opsctl users list --role pharmacist --json
    """
    render(accounts.list_accounts(container().uow(), operator(), role), COLUMNS, choose(fmt, as_json), title="账号")


@app.command("token")
def token(
    username: Annotated[str, typer.Argument(help="用户名")],
    label: Annotated[str, typer.Option(help="用途说明，如 医生App")] = "cli",
    days: Annotated[int, typer.Option(min=0, max=3650, help="有效天数，0 表示不过期")] = 90,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """为用户签发访问令牌（只显示这一次，库中只存散列）。

    示例：opsctl users token dr.li --label 医生App --days 30
    """
    issued = accounts.issue_token(container().uow(), operator(), username, label=label,
                                  ttl=timedelta(days=days) if days else None)
    info("令牌只显示这一次，请妥善保存；如泄露请用 opsctl users revoke 吊销")
    render_object({"token": issued.token, "token_id": issued.token_id, "username": issued.username,
                   "expires_at": issued.expires_at},
                  {"token": "令牌", "token_id": "令牌编号", "username": "用户名", "expires_at": "过期时间"},
                  choose(fmt, as_json))


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="令牌编号 tok_...")]) -> None:
    """吊销一个访问令牌。

    示例：opsctl users revoke tok_abcdefghijklmnopqrstuvwx
    """
    accounts.revoke_token(container().uow(), operator(), token_id)
    info(f"令牌 {token_id} 已吊销")
