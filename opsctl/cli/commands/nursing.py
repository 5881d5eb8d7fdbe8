"""opsctl nursing: 互联网+护理服务 for administrators (NUR-3): items and areas,
home nurses, order review, the visit record, the blacklist and the alarm queue."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

import typer

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.money import format_fen, yuan_to_fen
from clinical_core.domain.nursing import NursingStatus
from clinical_core.domain.nursing_alarm import DEFAULT_ESCALATE_AFTER, AlarmStatus
from clinical_core.domain.time import SHANGHAI
from clinical_core.services import (
    nursing_alarms,
    nursing_catalogue,
    nursing_orders,
    nursing_visits,
)
from clinical_core.services.nursing_catalogue import ItemSettings
from opsctl.cli.output import (
    Format,
    FormatOpt,
    JsonOpt,
    choose,
    info,
    render,
    render_object,
)
from opsctl.cli.state import container, operator

app = typer.Typer(help="上门护理（互联网+护理服务）：项目与区域、护士准入、订单审核、服务记录、黑名单、报警。\n\n"
                       "示例：opsctl nursing orders --status paid", no_args_is_help=True)
items_app = typer.Typer(help="护理项目：价格、时长、资质要求与服务区域。\n\n示例：opsctl nursing items list", no_args_is_help=True)
nurses_app = typer.Typer(help="上门护士准入与退出（R44：≥5 年且护师及以上）。\n\n示例：opsctl nursing nurses list",
                         no_args_is_help=True)
blacklist_app = typer.Typer(help="服务对象黑名单（R49）。\n\n示例：opsctl nursing blacklist list", no_args_is_help=True)
alarms_app = typer.Typer(help="一键呼叫报警队列：响应、关闭、响应时间、升级任务。\n\n示例：opsctl nursing alarms list --open",
                         no_args_is_help=True)
app.add_typer(items_app, name="items")
app.add_typer(nurses_app, name="nurses")
app.add_typer(blacklist_app, name="blacklist")
app.add_typer(alarms_app, name="alarms")

ITEM_COLUMNS = [("public_id", "编号"), ("code", "编码"), ("name", "名称"), ("price", "价格"),
                ("duration_minutes", "时长(分钟)"), ("min_title", "职称要求"), ("required_skills", "专项资质"),
                ("districts", "服务区县"), ("polygon_count", "区域多边形"), ("enabled", "开通"), ("price_fen", "价格(分)")]
NURSE_COLUMNS = [("staff_id", "编号"), ("name", "姓名"), ("title", "职称"), ("years", "执业年限"), ("radius_km", "服务半径(km)"),
                 ("base_lat", "驻点纬度"), ("base_lon", "驻点经度"), ("skills", "专项资质"), ("active", "在岗")]
ORDER_COLUMNS = [("public_id", "订单"), ("item_name", "项目"), ("status", "状态代码"), ("status_label", "状态"),
                 ("payment_state", "支付"), ("price", "价格"), ("patient_name", "患者"), ("address", "地址"),
                 ("window_start", "上门时间起"), ("window_end", "上门时间止"), ("nurse_name", "护士"),
                 ("review_rating", "评分")]
ALARM_COLUMNS = [("public_id", "报警"), ("status", "状态代码"), ("status_label", "状态"), ("nurse_name", "护士"),
                 ("order_id", "订单"), ("lat", "纬度"), ("lon", "经度"), ("raised_at", "报警时间"),
                 ("escalated_at", "升级时间"), ("acknowledged_at", "响应时间"), ("response_seconds", "响应用时(秒)"),
                 ("notes", "处理情况")]
BLACKLIST_COLUMNS = [("patient_id", "患者编号"), ("patient_name", "患者"), ("reason", "原因"), ("added_by", "操作人"),
                     ("added_at", "列入时间")]


def _fields(row: object) -> dict[str, object]:
    return {k: getattr(row, k) for k in row.__dataclass_fields__}  # type: ignore[attr-defined]


def _money(row: object) -> dict[str, object]:
    data = _fields(row)
    data["price"] = format_fen(int(data["price_fen"]))  # type: ignore[call-overload]
    return data


def _polygon(text: str) -> tuple[tuple[float, float], ...]:
    try:
        return tuple((float(p.split(",")[0]), float(p.split(",")[1])) for p in text.split(";") if p.strip())
    except (ValueError, IndexError) as exc:
        raise InvalidInput("多边形格式为 \"经度,纬度;经度,纬度;...\"", field="polygon") from exc


@app.command("districts")
def districts(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出可用于服务区域的区县编码（地址解析服务提供）。

    示例：opsctl nursing districts --json
    """
    rows = [{"code": d.code, "name": d.name, "lat": d.centre.lat, "lon": d.centre.lon}
            for d in container().geocoder.districts()]
    render(rows, [("code", "编码"), ("name", "区县"), ("lat", "中心纬度"), ("lon", "中心经度")], choose(fmt, as_json),
           title="区县")


@items_app.command("list")
def items_list(
    all_items: Annotated[bool, typer.Option("--all", help="包括已停用的项目")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出护理项目。

    示例：opsctl nursing items list --all --json
    """
    rows = nursing_catalogue.list_items(container().uow(), operator(), include_disabled=all_items)
    render([_money(r) for r in rows], ITEM_COLUMNS, choose(fmt, as_json), title="护理项目")


@items_app.command("set")
def items_set(
    code: Annotated[str, typer.Option(help="项目编码，如 WOUND")],
    name: Annotated[str, typer.Option(help="项目名称")],
    price: Annotated[str, typer.Option(help="价格（元）")],
    duration: Annotated[int, typer.Option(help="服务时长（分钟）")],
    district: Annotated[list[str] | None, typer.Option("--district", help="服务区县编码，可重复，如 440305")] = None,
    polygon: Annotated[list[str] | None, typer.Option("--polygon", help="服务区域多边形 \"经度,纬度;...\"，可重复")] = None,
    min_title: Annotated[str, typer.Option("--min-title", help="最低职称：护师、主管护师 ...")] = "护师",
    skill: Annotated[list[str] | None, typer.Option("--skill", help="专项资质要求，可重复")] = None,
    description: Annotated[str, typer.Option(help="项目说明")] = "",
    disable: Annotated[bool, typer.Option("--disable", help="停用该项目")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建或修改护理项目（按编码）。

    示例：opsctl nursing items set --code WOUND --name 伤口换药 --price 150 --duration 45 --district 440305
    """
    view = nursing_catalogue.configure_item(container().uow(), operator(), ItemSettings(
        code=code, name=name, price_fen=yuan_to_fen(price), duration_minutes=duration, min_title=min_title,
        required_skills=tuple(skill or ()), districts=tuple(district or ()),
        polygons=tuple(_polygon(p) for p in polygon or ()), description=description, enabled=not disable))
    render([_money(view)], ITEM_COLUMNS, choose(fmt, as_json), title="已保存")


@nurses_app.command("list")
def nurses_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出上门护士及其资质、驻点和服务半径。

    示例：opsctl nursing nurses list --json
    """
    render(nursing_catalogue.list_home_nurses(container().uow(), operator()), NURSE_COLUMNS, choose(fmt, as_json),
           title="上门护士")


@nurses_app.command("add")
def nurses_add(
    staff_id: Annotated[str, typer.Argument(help="护士编号（stf_...）")],
    lat: Annotated[float, typer.Option(help="驻点纬度")],
    lon: Annotated[float, typer.Option(help="驻点经度")],
    radius: Annotated[float, typer.Option(help="服务半径（公里）")] = 10.0,
    skill: Annotated[list[str] | None, typer.Option("--skill", help="专项资质，可重复")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """护士准入（检查 R44）；已准入的护士则更新驻点、半径与资质。

    示例：opsctl nursing nurses add stf_0123 --lat 22.523 --lon 113.942 --radius 8 --skill PICC维护
    """
    view = nursing_catalogue.register_home_nurse(container().uow(), operator(), staff_id, lat, lon, radius,
                                                 tuple(skill or ()))
    render([view], NURSE_COLUMNS, choose(fmt, as_json), title="已准入")


@nurses_app.command("remove")
def nurses_remove(
    staff_id: Annotated[str, typer.Argument(help="护士编号（stf_...）")],
    reason: Annotated[str, typer.Option(help="退出原因")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """护士退出上门护理（不再从服务大厅接单）。

    示例：opsctl nursing nurses remove stf_0123 --reason 调岗
    """
    view = nursing_catalogue.deactivate_home_nurse(container().uow(), operator(), staff_id, reason)
    render([view], NURSE_COLUMNS, choose(fmt, as_json), title="已退出")


@app.command("orders")
def orders(
    status: Annotated[NursingStatus | None, typer.Option(help="订单状态，如 paid（待审核）、open、completed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 50,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出护理订单（患者姓名与地址脱敏）。

    示例：opsctl nursing orders --status paid --json
    """
    rows = nursing_orders.list_orders(container().uow(), operator(), status=status, limit=limit)
    render([_money(r) for r in rows], ORDER_COLUMNS, choose(fmt, as_json), title="护理订单")


@app.command("approve")
def approve(order_id: Annotated[str, typer.Argument(help="订单编号（nor_...）")],
            fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """审核通过：订单进入服务大厅供护士抢单。

    示例：opsctl nursing approve nor_0123
    """
    view = nursing_orders.approve_order(container().uow(), operator(), order_id)
    render([_money(view)], ORDER_COLUMNS, choose(fmt, as_json), title="已通过")


@app.command("reject")
def reject(order_id: Annotated[str, typer.Argument(help="订单编号（nor_...）")],
           reason: Annotated[str, typer.Option(help="驳回原因（告知患者）")],
           fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """审核驳回：登记全额退款。

    示例：opsctl nursing reject nor_0123 --reason 超出服务能力
    """
    view = nursing_orders.reject_order(container().uow(), operator(), order_id, reason)
    render([_money(view)], ORDER_COLUMNS, choose(fmt, as_json), title="已驳回")


@app.command("assign")
def assign(order_id: Annotated[str, typer.Argument(help="订单编号（nor_...）")],
           nurse: Annotated[str, typer.Option(help="护士编号（stf_...）")],
           reason: Annotated[str, typer.Option(help="派单/改派原因")] = "",
           fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """派单或改派给一名具备资质的上门护士。

    示例：opsctl nursing assign nor_0123 --nurse stf_0456 --reason 原护士请假
    """
    view = nursing_orders.assign_order(container().uow(), operator(), order_id, nurse, reason)
    render([_money(view)], ORDER_COLUMNS, choose(fmt, as_json), title="已派单")


@app.command("record")
def record(order_id: Annotated[str, typer.Argument(help="订单编号（nor_...）")],
           fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """服务记录及防篡改校验（哈希链）；记录被改动时退出码为 1。

    示例：opsctl nursing record nor_0123 --json
    """
    result = nursing_visits.visit_record(container().uow(), operator(), order_id)
    if not result.intact:
        info(f"[red]服务记录校验失败：第 {result.first_broken_seq} 条之后的记录被改动过[/red]")
    else:
        info(f"服务记录完整（{len(result.entries)} 条）")
    render([{"seq": e.seq, "kind": e.kind, "actor": e.actor, "at": e.at, "data": e.data, "hash": e.hash[:16]}
            for e in result.entries],
           [("seq", "序号"), ("kind", "类型"), ("actor", "操作人"), ("at", "时间"), ("data", "内容"), ("hash", "哈希")],
           choose(fmt, as_json), title=f"服务记录 {order_id}")
    if not result.intact:
        raise typer.Exit(1)


@app.command("override")
def override(order_id: Annotated[str, typer.Argument(help="订单编号（nor_...）")],
             reason: Annotated[str, typer.Option(help="放行原因（写入服务记录）")],
             event: Annotated[str, typer.Option(help="check_in（签到）或 check_out（签退）")] = "check_in",
             fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """电子围栏放行：该订单下一次签到（或签退）不受 300 米范围限制。

    示例：opsctl nursing override nor_0123 --event check_in --reason 小区定位漂移已电话核实
    """
    entry = nursing_visits.override_geofence(container().uow(), operator(), order_id, event, reason)
    render_object({"seq": entry.seq, "kind": entry.kind, "event": event, "at": entry.at},
                  {"seq": "序号", "kind": "类型", "event": "放行对象", "at": "时间"}, choose(fmt, as_json), title="已放行")


@blacklist_app.command("list")
def blacklist_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出黑名单。

    示例：opsctl nursing blacklist list --json
    """
    render(nursing_catalogue.blacklist_list(container().uow(), operator()), BLACKLIST_COLUMNS, choose(fmt, as_json),
           title="黑名单")


@blacklist_app.command("add")
def blacklist_add(patient_id: Annotated[str, typer.Argument(help="患者编号（pat_...）")],
                  reason: Annotated[str, typer.Option(help="原因")],
                  fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """把服务对象列入黑名单，此后不能预约上门护理。

    示例：opsctl nursing blacklist add pat_0123 --reason 多次辱骂上门护士
    """
    entry = nursing_catalogue.blacklist_add(container().uow(), operator(), patient_id, reason)
    render([entry], BLACKLIST_COLUMNS, choose(fmt, as_json), title="已列入")


@blacklist_app.command("remove")
def blacklist_remove(patient_id: Annotated[str, typer.Argument(help="患者编号（pat_...）")]) -> None:
    """移出黑名单（保留记录）。

    示例：opsctl nursing blacklist remove pat_0123
    """
    nursing_catalogue.blacklist_remove(container().uow(), operator(), patient_id)
    info(f"已将 {patient_id} 移出黑名单")


@alarms_app.command("list")
def alarms_list(
    open_only: Annotated[bool, typer.Option("--open", help="只看未关闭的报警")] = False,
    status: Annotated[AlarmStatus | None, typer.Option(help="raised、escalated、acknowledged、closed")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """报警队列：已升级和待响应的排在最前。

    示例：opsctl nursing alarms list --open
    """
    rows = nursing_alarms.list_alarms(container().uow(), operator(), status=status, open_only=open_only)
    render(rows, ALARM_COLUMNS, choose(fmt, as_json), title="报警")


@alarms_app.command("ack")
def alarms_ack(alarm_id: Annotated[str, typer.Argument(help="报警编号（sos_...）")],
               fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """响应报警（记录响应时间）。

    示例：opsctl nursing alarms ack sos_0123
    """
    render([nursing_alarms.acknowledge_alarm(container().uow(), operator(), alarm_id)], ALARM_COLUMNS,
           choose(fmt, as_json), title="已响应")


@alarms_app.command("close")
def alarms_close(alarm_id: Annotated[str, typer.Argument(help="报警编号（sos_...）")],
                 notes: Annotated[str, typer.Option(help="处理情况")],
                 fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """关闭报警并填写处理情况。

    示例：opsctl nursing alarms close sos_0123 --notes 已电话联系护士，现场安全
    """
    render([nursing_alarms.close_alarm(container().uow(), operator(), alarm_id, notes)], ALARM_COLUMNS,
           choose(fmt, as_json), title="已关闭")


@alarms_app.command("stats")
def alarms_stats(
    since: Annotated[datetime, typer.Option(help="起始日期（含，北京时间），如 2026-10-01")],
    until: Annotated[datetime, typer.Option(help="截止日期（不含，北京时间）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """报警响应时间：报警数、已响应、升级数、中位数/平均/P90/最长（秒）。

    示例：opsctl nursing alarms stats --since 2026-10-01 --until 2026-11-01 --json
    """
    def local(day: datetime) -> datetime:
        return datetime.combine(day.date(), time(), SHANGHAI)

    stats = nursing_alarms.response_times(container().uow(), operator(), local(since), local(until))
    render_object(_fields(stats), {"alarms": "报警数", "acknowledged": "已响应", "escalated": "升级",
                                   "median_seconds": "中位数(秒)", "mean_seconds": "平均(秒)", "p90_seconds": "P90(秒)",
                                   "max_seconds": "最长(秒)"}, choose(fmt, as_json), title="报警响应时间")


@alarms_app.command("escalate")
def alarms_escalate(
    after: Annotated[int, typer.Option(help="超过多少秒未响应即升级")] = int(DEFAULT_ESCALATE_AFTER.total_seconds()),
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """立即执行升级任务：超时未响应的报警升级（通常由调度器每分钟执行）。

    示例：opsctl nursing alarms escalate --after 180
    """
    c = container()
    result = nursing_alarms.escalate_unacknowledged(c.uow(), c.clock.now(), after=timedelta(seconds=after))
    info(f"升级 {len(result.escalated)} 条报警")
    render([{"alarm": a} for a in result.escalated], [("alarm", "已升级报警")], choose(fmt, as_json), title="升级")
