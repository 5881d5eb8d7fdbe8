"""opsctl audit: read the append-only audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from clinical_core.services import audit as audit_service
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container

app = typer.Typer(help="审计日志。\n\n示例：opsctl audit list --action patient.read", no_args_is_help=True)


@app.command("list")
def list_(
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="对象类型，如 patient")] = None,
    entity_id: Annotated[str | None, typer.Option("--entity", help="对象编号，如 pat_...")] = None,
    action: Annotated[str | None, typer.Option(help="动作，如 patient.read")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 50,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出最近的审计记录（谁、何时、对什么、做了什么）。

    示例：opsctl audit list --entity-type patient --limit 20 --json
    """
    rows = audit_service.list_entries(container().uow(), entity_type=entity_type, entity_id=entity_id,
                                      action=action, limit=limit)
    render(rows, [("at", "时间"), ("actor", "操作者"), ("action", "动作"), ("entity_type", "对象类型"),
                  ("entity_id", "对象"), ("details", "详情")], choose(fmt, as_json), title="审计日志")
