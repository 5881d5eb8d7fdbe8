"""opsctl consult: online consultation for administrators and operations (CON-4)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

import typer

from clinical_core.domain.consultation import ConsultStatus, PaymentState, ServiceKind
from clinical_core.domain.money import format_fen, yuan_to_fen
from clinical_core.domain.time import SHANGHAI
from clinical_core.services import consult_jobs, consult_ledger, consult_settings, consultation
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, info, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="在线咨询：服务设置、订单、退款、医生统计。\n\n示例：opsctl consult orders --status waiting",
                  no_args_is_help=True)
services_app = typer.Typer(help="咨询服务设置（图文、电话、科室咨询、定点保障）。\n\n示例：opsctl consult services list",
                           no_args_is_help=True)
refunds_app = typer.Typer(help="咨询退款记录与发起退款。\n\n示例：opsctl consult refunds list --status pending",
                          no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(refunds_app, name="refunds")

SERVICE_COLUMNS = [("public_id", "编号"), ("kind", "类型代码"), ("kind_label", "类型"), ("name", "名称"), ("doctor_name", "医生"),
                   ("department", "科室"), ("price", "价格"), ("time_limit_minutes", "回复时限(分钟)"),
                   ("enabled", "开通"), ("team", "定点团队"), ("price_fen", "价格(分)")]
ORDER_COLUMNS = [("public_id", "订单"), ("kind", "类型"), ("status", "状态代码"), ("status_label", "状态"), ("payment_state", "支付"),
                 ("price", "价格"), ("patient_name", "患者"), ("department", "科室"), ("doctor_name", "医生"),
                 ("created_at", "下单时间"), ("answer_deadline", "回复期限"), ("close_reason", "结束原因"),
                 ("review_rating", "评分")]
REFUND_COLUMNS = [("public_id", "退款"), ("consultation_id", "订单"), ("amount", "金额"), ("reason", "原因"),
                  ("status", "状态"), ("attempts", "尝试次数"), ("created_at", "申请时间"), ("settled_at", "完成时间")]
STATS_COLUMNS = [("doctor_id", "医生编号"), ("doctor_name", "医生"), ("orders", "订单"), ("completed", "已完成"),
                 ("unanswered", "超时未答"), ("reviews", "评价数"), ("avg_rating", "平均评分"), ("paid", "收入"),
                 ("refunded", "退款"), ("net", "净收入")]


def _with_money(row: object, **fields: str) -> dict[str, object]:
    data = {k: getattr(row, k) for k in row.__dataclass_fields__}  # type: ignore[attr-defined]
    for name, source in fields.items():
        data[name] = format_fen(data[source])  # type: ignore[arg-type]
    return data


@services_app.command("list")
def services_list(
    kind: Annotated[ServiceKind | None, typer.Option(help="类型：text、phone、department、designated")] = None,
    doctor: Annotated[str | None, typer.Option(help="医生编号（stf_...）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出咨询服务及价格、开通状态。

    示例：opsctl consult services list --kind department --json
    """
    rows = consult_settings.list_services(container().uow(), operator(), kind=kind, doctor_id=doctor)
    render([_with_money(r, price="price_fen") for r in rows], SERVICE_COLUMNS,
           choose(fmt, as_json), title="咨询服务")


@services_app.command("set")
def services_set(
    kind: Annotated[ServiceKind, typer.Option(help="类型：text、phone、department、designated")],
    price: Annotated[str, typer.Option(help="价格（元），定点保障为 0")],
    doctor: Annotated[str | None, typer.Option(help="图文/电话：医生编号（stf_...）")] = None,
    department: Annotated[str | None, typer.Option(help="科室咨询：科室编码")] = None,
    name: Annotated[str | None, typer.Option(help="定点保障：服务名称")] = None,
    time_limit: Annotated[int | None, typer.Option("--time-limit", help="回复时限（分钟），默认按类型")] = None,
    disable: Annotated[bool, typer.Option("--disable", help="关闭该服务")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建或修改一项咨询服务（价格、时限、开关）。

    示例：opsctl consult services set --kind department --department CARD --price 15
    """
    view = consult_settings.configure_service(container().uow(), operator(), consult_settings.ServiceSettings(
        kind=kind, price_fen=yuan_to_fen(price), enabled=not disable, doctor_id=doctor, department_code=department,
        name=name, time_limit_minutes=time_limit))
    render([_with_money(view, price="price_fen")], SERVICE_COLUMNS, choose(fmt, as_json), title="已保存")


@services_app.command("team")
def services_team(
    service_id: Annotated[str, typer.Argument(help="定点保障服务编号（svc_...）")],
    staff: Annotated[list[str], typer.Option("--staff", help="医生编号，可重复")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """指定定点保障的应答团队（替换原团队；成员须具备在线诊疗资质）。

    示例：opsctl consult services team svc_0123 --staff stf_aaa --staff stf_bbb
    """
    view = consult_settings.appoint_team(container().uow(), operator(), service_id, staff)
    render([_with_money(view, price="price_fen")], SERVICE_COLUMNS, choose(fmt, as_json), title="已指定团队")


@app.command("orders")
def orders(
    status: Annotated[ConsultStatus | None, typer.Option(help="订单状态，如 waiting、closed")] = None,
    payment: Annotated[PaymentState | None, typer.Option(help="支付状态：unpaid、paid、refunded ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 50,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出咨询订单（患者姓名脱敏，不含咨询内容）。

    示例：opsctl consult orders --status closed --payment refunded --json
    """
    rows = consultation.list_consultations(container().uow(), operator(), status=status, payment=payment,
                                           limit=limit)
    render([_with_money(r, price="price_fen") for r in rows], ORDER_COLUMNS, choose(fmt, as_json), title="咨询订单")


@refunds_app.command("list")
def refunds_list(
    status: Annotated[str | None, typer.Option(help="pending、processing 或 succeeded")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出退款记录。

    示例：opsctl consult refunds list --status pending --json
    """
    rows = consult_ledger.list_refunds(container().uow(), operator(), status=status)
    render([_with_money(r, amount="amount_fen") for r in rows], REFUND_COLUMNS + [("amount_fen", "金额(分)")],
           choose(fmt, as_json), title="退款")


@refunds_app.command("request")
def refunds_request(
    consultation_id: Annotated[str, typer.Argument(help="订单编号（con_...）")],
    reason: Annotated[str, typer.Option(help="退款原因")],
    amount: Annotated[str | None, typer.Option(help="退款金额（元），默认退还全部未退金额")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """为一笔已支付订单发起退款（生成待退款记录，由退款任务提交支付平台）。

    示例：opsctl consult refunds request con_0123 --reason 投诉核实 --amount 10
    """
    view = consult_ledger.request_refund(container().uow(), operator(), consultation_id,
                                         yuan_to_fen(amount) if amount else None, reason)
    render([_with_money(view, amount="amount_fen")], REFUND_COLUMNS, choose(fmt, as_json), title="已登记退款")


@app.command("stats")
def stats(
    since: Annotated[datetime | None, typer.Option(help="起始日期（含，北京时间），如 2026-10-01")] = None,
    until: Annotated[datetime | None, typer.Option(help="截止日期（不含，北京时间）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """医生统计：订单、完成、超时、评价与收支（收入 = 支付 − 退款，按记录计算）。

    示例：opsctl consult stats --since 2026-10-01 --until 2026-11-01 --json
    """
    def local(day: datetime | None) -> datetime | None:
        return datetime.combine(day.date(), time(), SHANGHAI) if day else None

    rows = consult_ledger.doctor_statistics(container().uow(), operator(), since=local(since), until=local(until))
    render([_with_money(r, paid="paid_fen", refunded="refunded_fen", net="net_fen") for r in rows],
           STATS_COLUMNS + [("net_fen", "净收入(分)")], choose(fmt, as_json), title="医生统计")


@app.command("expire")
def expire(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """立即执行超时任务：关闭超时未回复的订单并登记全额退款，取消超时未支付的订单。

    示例：opsctl consult expire --json
    """
    c = container()
    result = consult_jobs.expire_unanswered(c.uow(), c.clock.now())
    info(f"超时关闭 {len(result.closed_unanswered)} 单，登记退款 {result.refunds_requested} 笔，"
         f"取消未支付 {len(result.cancelled_unpaid)} 单")
    render([{"closed_unanswered": len(result.closed_unanswered), "refunds_requested": result.refunds_requested,
             "cancelled_unpaid": len(result.cancelled_unpaid)}],
           [("closed_unanswered", "超时关闭"), ("refunds_requested", "登记退款"), ("cancelled_unpaid", "取消未支付")],
           choose(fmt, as_json), title="超时任务")
