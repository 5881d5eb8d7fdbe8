"""opsctl followup: 随访计划 — templates, starting plans, steps, delivery and settling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaigns.services import followup as service
from clinical_core.domain.errors import InvalidInput
from opsctl.cli.commands.questionnaire import read_document
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="随访计划：模板（问卷、文字、图片、语音、课程、复诊预约）、开启、发送与查看。\n\n"
                       "示例：opsctl followup plans --status active", no_args_is_help=True)
templates_app = typer.Typer(help="随访计划模板。\n\n示例：opsctl followup templates list", no_args_is_help=True)
app.add_typer(templates_app, name="templates")

TEMPLATE_COLUMNS = [("code", "代码"), ("name", "名称"), ("trigger_event", "触发事件"), ("trigger_match", "匹配诊断"),
                    ("steps", "步骤数"), ("active", "启用")]
PLAN_COLUMNS = [("plan_id", "计划"), ("template", "模板"), ("patient_id", "患者编号"), ("doctor", "责任医生"),
                ("source", "来源"), ("status", "状态"), ("started_at", "开始时间"), ("progress", "已发送/步骤")]
STEP_COLUMNS = [("step_id", "步骤"), ("plan_id", "计划"), ("seq", "序号"), ("kind", "类型"), ("title", "标题"),
                ("due_at", "计划发送"), ("status", "状态"), ("attempts", "尝试次数"), ("sent_at", "发送时间"),
                ("answered_at", "问卷提交"), ("last_error", "错误")]


def _plan_row(p: service.PlanView) -> dict[str, object]:
    row = {k: getattr(p, k) for k, _ in PLAN_COLUMNS if k != "progress"}
    row["progress"] = f"{sum(s.status == 'sent' for s in p.steps)}/{len(p.steps)}"
    return row


@templates_app.command("add")
def templates_add(
    code: Annotated[str, typer.Argument(help="模板代码，如 hypertension")],
    file: Annotated[Path, typer.Argument(help="步骤（YAML 或 JSON 列表：day、at、kind、title、body、url、questionnaire_id）")],
    name: Annotated[str, typer.Option("--name", help="模板名称")],
    trigger: Annotated[str | None, typer.Option("--trigger", help="自动开启的事件：rx_dispensed 或 consult_closed")] = None,
    match: Annotated[list[str] | None, typer.Option("--match", help="匹配的诊断名称或 ICD-10 前缀（可多次）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """增加随访计划模板；给出 --trigger 时，发药或咨询完成后自动为匹配诊断的患者开启。

    示例：opsctl followup templates add hypertension 高血压随访.yaml --name 高血压随访 --trigger rx_dispensed --match I10
    """
    document = read_document(file)
    steps = document.get("steps") if isinstance(document, dict) else document
    view = service.create_template(container().uow(), operator(), code, name, steps, trigger_event=trigger,
                                   trigger_match=match or ())
    render_object({**{k: getattr(view, k) for k, _ in TEMPLATE_COLUMNS}, "steps": len(view.steps)},
                  dict(TEMPLATE_COLUMNS), choose(fmt, as_json), title="已增加模板")


@templates_app.command("list")
def templates_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出随访计划模板。

    示例：opsctl followup templates list --json
    """
    rows = [{**{k: getattr(t, k) for k, _ in TEMPLATE_COLUMNS}, "steps": len(t.steps)}
            for t in service.list_templates(container().uow(), operator())]
    render(rows, TEMPLATE_COLUMNS, choose(fmt, as_json), title="随访计划模板")


@app.command("start")
def start(
    template: Annotated[str, typer.Argument(help="模板代码")],
    patient: Annotated[list[str] | None, typer.Option("--patient", help="患者编号 pat_...（可多次）")] = None,
    patients_file: Annotated[Path | None, typer.Option("--patients-file", help="每行一个患者编号的文件")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """为一位或多位患者开启随访计划（按模板生成各步骤的发送时间，避开免打扰时段）。

    示例：opsctl followup start hypertension --patient pat_0123 --patient pat_4567
    """
    wanted = list(patient or [])
    if patients_file is not None:
        wanted += [line.strip() for line in patients_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not wanted:
        raise InvalidInput("请用 --patient 或 --patients-file 指定患者")
    c = container()
    plans = service.start_plans(c.uow(), operator(), template, wanted, quiet_hours=c.followup_quiet_hours)
    render([_plan_row(p) for p in plans], PLAN_COLUMNS, choose(fmt, as_json), title="已开启随访计划")


@app.command("plans")
def plans(
    patient: Annotated[str | None, typer.Option("--patient", help="只看这位患者")] = None,
    status: Annotated[str | None, typer.Option(help="active、completed 或 stopped")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 100,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出随访计划。

    示例：opsctl followup plans --status active --json
    """
    rows = service.list_plans(container().uow(), operator(), patient_id=patient, status=status, limit=limit)
    render([_plan_row(p) for p in rows], PLAN_COLUMNS, choose(fmt, as_json), title="随访计划")


@app.command("show")
def show(plan_id: Annotated[str, typer.Argument(help="计划编号 fup_...")], fmt: FormatOpt = Format.table,
         as_json: JsonOpt = False) -> None:
    """查看一个随访计划及其步骤。

    示例：opsctl followup show fup_0123
    """
    plan = service.get_plan(container().uow(), operator(), plan_id)
    chosen = choose(fmt, as_json)
    if chosen is Format.json:
        render_object({k: getattr(plan, k) for k in plan.__dataclass_fields__}, {}, chosen)
        return
    render_object(_plan_row(plan), dict(PLAN_COLUMNS), chosen, title="随访计划")
    render(list(plan.steps), STEP_COLUMNS, chosen, title="步骤")


@app.command("steps")
def steps(
    status: Annotated[str | None, typer.Option(help="pending、sending、sent、failed、unknown 或 cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 200,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按计划发送时间列出随访步骤（如结果未知、发送失败的）。

    示例：opsctl followup steps --status unknown
    """
    render(service.list_steps(container().uow(), operator(), status=status, limit=limit), STEP_COLUMNS,
           choose(fmt, as_json), title="随访步骤")


@app.command("stop")
def stop(plan_id: Annotated[str, typer.Argument(help="计划编号")],
         reason: Annotated[str, typer.Option("--reason", help="停止原因（不写患者信息）")],
         fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """停止随访计划：未发送的步骤取消。

    示例：opsctl followup stop fup_0123 --reason 患者转院
    """
    render_object(_plan_row(service.stop_plan(container().uow(), operator(), plan_id, reason)), dict(PLAN_COLUMNS),
                  choose(fmt, as_json), title="已停止")


@app.command("settle")
def settle(
    step_id: Annotated[str, typer.Argument(help="结果未知的步骤编号 fus_...")],
    delivered: Annotated[bool, typer.Option("--delivered/--not-delivered", help="按微信后台记录确认是否送达")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按微信后台的发送记录，人工确认结果未知的步骤（系统从不自动重发这类步骤）。

    示例：opsctl followup settle fus_0123 --delivered
    """
    view = service.settle_unknown(container().uow(), operator(), step_id, delivered=delivered)
    render_object({k: getattr(view, k) for k, _ in STEP_COLUMNS}, dict(STEP_COLUMNS), choose(fmt, as_json))


@app.command("deliver")
def deliver(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出将排入台账的步骤，不排入")] = False,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="本次最多排入的步骤数")] = 200,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """把到期的随访步骤排入推送投递台账（与定时任务 followup.deliver_due 相同；免打扰时段内不排入），
    由 opsctl push worker 发送；同时按台账同步已排入步骤的状态。

    示例：opsctl followup deliver --dry-run
    """
    c = container()
    result = service.deliver_due(c.uow(), c.clock.now(), c.followup_channel, batch=batch,
                                 quiet_hours=c.followup_quiet_hours, dry_run=dry_run)
    data = {k: getattr(result, k) for k in result.__dataclass_fields__}
    render_object(data, {"queued": "排入台账", "sent": "已送达", "failed": "失败", "unknown": "结果未知",
                         "deferred_quiet": "免打扰顺延", "deferred_cap": "频次上限顺延", "stale_unknown": "中断转未知",
                         "dry_run": "将排入的步骤"},
                  choose(fmt, as_json), title="随访发送")
