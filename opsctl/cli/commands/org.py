"""opsctl org: departments and staff."""

from __future__ import annotations

from typing import Annotated

import typer

from clinical_core.domain.staff import Role
from clinical_core.services import organisation
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="医院组织：科室与人员。\n\n示例：opsctl org departments", no_args_is_help=True)


@app.command("departments")
def departments(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出科室及在岗人数。

    示例：opsctl org departments --json
    """
    rows = organisation.list_departments(container().uow(), operator())
    render(rows, [("code", "编码"), ("name", "科室"), ("kind", "类型"), ("online", "开通线上"),
                  ("staff_count", "人数")], choose(fmt, as_json), title="科室")


@app.command("staff")
def staff(
    role: Annotated[Role | None, typer.Option(help="角色：doctor、pharmacist、nurse ...")] = None,
    dept: Annotated[str | None, typer.Option(help="科室编码，如 CARD")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="最多显示人数")] = 200,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出人员及执业资质（职称、执业年限、备案、处方权、能否线上接诊）。

    示例：opsctl org staff --role doctor --dept CARD
    """
    rows = organisation.list_staff(container().uow(), operator(), role=role, department_code=dept, limit=limit)
    render(rows, [("name", "姓名"), ("role", "角色"), ("title", "职称"), ("department", "科室"),
                  ("years_of_practice", "执业年限"), ("filing_status", "备案"), ("may_prescribe", "处方权"),
                  ("may_consult_online", "可线上接诊"), ("phone", "手机"), ("public_id", "编号")],
           choose(fmt, as_json), title="人员")
