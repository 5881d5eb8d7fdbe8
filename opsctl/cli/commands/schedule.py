"""opsctl schedule: 网络门诊排班 for administrators and operations (VC-3, VC-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from clinical_core.adapters.video_schedule_excel import read_schedule
from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.money import format_fen, yuan_to_fen
from clinical_core.domain.time import SHANGHAI, local_date
from clinical_core.domain.video_schedule import ScheduleRejected
from clinical_core.domain.video_visit import DEFAULT_LOOKBACK_DAYS, CheckMode
from clinical_core.services import video_schedule, video_settings
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="网络门诊排班：发布、导入、停诊、线上线下融合号源、复诊判定模式。\n\n"
                       "示例：opsctl schedule fused --department CARD --date 2026-11-05", no_args_is_help=True)
mode_app = typer.Typer(help="复诊判定模式（strict 严格 / declared 申报 / off 关闭）。\n\n"
                            "示例：opsctl schedule check-mode set declared --department DERM", no_args_is_help=True)
app.add_typer(mode_app, name="check-mode")

SESSION_COLUMNS = [("public_id", "出诊"), ("doctor_name", "医生"), ("department", "科室"), ("starts", "开始"),
                   ("ends", "结束"), ("slot_minutes", "每号分钟"), ("price", "挂号费"), ("slots", "号源"),
                   ("open_slots", "可约"), ("status", "状态")]
FUSED_COLUMNS = [("doctor_name", "医生"), ("department", "科室"), ("starts", "开始"), ("ends", "结束"),
                 ("channels", "渠道"), ("online_slot_id", "线上号源"), ("offline", "线下号源"), ("available", "可约"),
                 ("price", "挂号费")]
MODE_COLUMNS = [("scope", "范围"), ("check_mode", "模式"), ("check_mode_label", "说明"), ("lookback_days", "有效期(天)"),
                ("updated_at", "修改时间"), ("updated_by", "修改人")]
CHANNELS = {"online": "线上", "offline": "线下", "both": "线上+线下"}


def _local(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def parse_local(text: str) -> datetime:
    """'2026-11-05 08:30' in Asia/Shanghai."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)
    except ValueError:
        raise InvalidInput("时间格式应为 2026-11-05 08:30（北京时间）", field="time") from None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def _session_row(s: video_schedule.SessionView) -> dict[str, object]:
    return {**{k: getattr(s, k) for k in s.__dataclass_fields__}, "starts": _local(s.starts_at),
            "ends": _local(s.ends_at), "price": format_fen(s.price_fen)}


@app.command("publish")
def publish(
    doctor: Annotated[str, typer.Option(help="医生编号（stf_...）")],
    start: Annotated[str, typer.Option(help="开始时间（北京时间），如 2026-11-05 08:00")],
    end: Annotated[str, typer.Option(help="结束时间（北京时间）")],
    price: Annotated[str, typer.Option(help="挂号费（元）")],
    slot_minutes: Annotated[int, typer.Option("--slot-minutes", help="每号分钟")] = 15,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """发布一次网络门诊出诊，按每号分钟切分号源（医生须满足 R07）。

    示例：opsctl schedule publish --doctor stf_xxx --start "2026-11-05 08:00" --end "2026-11-05 11:00" --price 30
    """
    view = video_schedule.create_session(container().uow(), operator(), video_schedule.NewSession(
        doctor, parse_local(start), parse_local(end), slot_minutes, yuan_to_fen(price)))
    render_object(_session_row(view), dict(SESSION_COLUMNS), choose(fmt, as_json), title="已发布出诊")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Excel 文件（.xlsx），首行为表头", exists=True, dir_okay=False)],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """从 Excel 导入排班：全部正确才导入，否则逐行列出错误、一条也不导入。

    表头：医生工号、日期、开始时间、结束时间、每号分钟、挂号费（元）。

    示例：opsctl schedule import 十一月排班.xlsx --json
    """
    try:
        result = video_schedule.import_schedule(container().uow(), operator(), read_schedule(file),
                                                source=file.name)
    except ScheduleRejected as exc:
        for line in exc.row_errors[:200]:
            typer.echo(line, err=True)
        if len(exc.row_errors) > 200:
            typer.echo(f"……另有 {len(exc.row_errors) - 200} 处错误", err=True)
        raise
    render_object({"rows": result.rows, "sessions": result.sessions, "slots": result.slots},
                  {"rows": "行数", "sessions": "出诊", "slots": "号源"}, choose(fmt, as_json), title="排班已导入")


@app.command("list")
def list_(
    from_date: Annotated[str | None, typer.Option("--from", help="起始日期，默认今天")] = None,
    days: Annotated[int, typer.Option(help="天数")] = 7,
    doctor: Annotated[str | None, typer.Option(help="医生编号")] = None,
    department: Annotated[str | None, typer.Option(help="科室编码")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出网络门诊出诊与可约号源。

    示例：opsctl schedule list --department CARD --days 14
    """
    c = container()
    day = date.fromisoformat(from_date) if from_date else local_date(c.clock.now())
    rows = video_schedule.list_sessions(c.uow(), operator(), start=_day_start(day),
                                        end=_day_start(day + timedelta(days=days)), doctor_id=doctor,
                                        department_code=department)
    render([_session_row(s) for s in rows], SESSION_COLUMNS, choose(fmt, as_json), title="网络门诊出诊")


@app.command("fused")
def fused(
    doctor: Annotated[str | None, typer.Option(help="医生编号")] = None,
    department: Annotated[str | None, typer.Option(help="科室编码")] = None,
    on: Annotated[str | None, typer.Option("--date", help="日期，默认今天")] = None,
    days: Annotated[int, typer.Option(help="天数")] = 1,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """线上线下融合号源（VC-3）：同一医生同一时段在任一侧被约，两侧都不可约。

    示例：opsctl schedule fused --doctor stf_xxx --date 2026-11-05 --json
    """
    c = container()
    day = date.fromisoformat(on) if on else local_date(c.clock.now())
    rows = video_schedule.fused_schedule(c.uow(), operator(), c.his_schedule, start=_day_start(day),
                                         end=_day_start(day + timedelta(days=days)), doctor_id=doctor,
                                         department_code=department)
    render([{**{k: getattr(f, k) for k in f.__dataclass_fields__}, "starts": _local(f.starts_at),
             "ends": _local(f.ends_at), "offline": "、".join(f.offline_slot_nos),
             "channels": CHANNELS[f.channels] if fmt is Format.table and not as_json else f.channels,
             "price": format_fen(f.price_fen) if f.price_fen is not None else ""} for f in rows],
           FUSED_COLUMNS, choose(fmt, as_json), title="融合号源")


@app.command("cancel")
def cancel(
    session: Annotated[str, typer.Argument(help="出诊编号（vss_...）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """停诊：关闭未约号源，已预约未开始的视频复诊由医院取消并全额退款。

    示例：opsctl schedule cancel vss_xxx
    """
    c = container()
    view = video_schedule.cancel_session(c.uow(), operator(), c.his_schedule, session)
    render_object(_session_row(view), dict(SESSION_COLUMNS), choose(fmt, as_json), title="已停诊")


@mode_app.command("show")
def mode_show(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出复诊判定模式（全院 * 与各科室）。

    示例：opsctl schedule check-mode show --json
    """
    rows = video_settings.list_settings(container().uow(), operator())
    render(rows, MODE_COLUMNS, choose(fmt, as_json), title="复诊判定模式")


@mode_app.command("set")
def mode_set(
    mode: Annotated[CheckMode, typer.Argument(help="strict（严格：HIS 线下就诊）、declared（申报：上传病历）、off（关闭）")],
    department: Annotated[str | None, typer.Option(help="科室编码；不填为全院默认")] = None,
    lookback_days: Annotated[int, typer.Option("--lookback-days", help="复诊依据有效期（天）")] = DEFAULT_LOOKBACK_DAYS,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """设置复诊判定模式（VC-5，留痕）。

    示例：opsctl schedule check-mode set strict --department CARD --lookback-days 180
    """
    view = video_settings.set_check_mode(container().uow(), operator(), mode, department_code=department,
                                         lookback_days=lookback_days)
    render_object({k: getattr(view, k) for k in view.__dataclass_fields__}, dict(MODE_COLUMNS),
                  choose(fmt, as_json), title="复诊判定模式")
