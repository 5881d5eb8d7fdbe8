"""opsctl live / opsctl community: 直播 on the hospital's accounts and 患者社群."""

from __future__ import annotations

from typing import Annotated

import typer

from content.domain.calendar import Platform
from content.domain.live import LiveStatus
from content.services import live as live_service
from opsctl.cli.commands.content import parse_local
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="直播：排期与直播计划、向关注者和社群发预告、开播、结束、取消。\n\n示例：opsctl live list --status scheduled",
                  no_args_is_help=True)
community_app = typer.Typer(help="患者社群：登记社群（名称与企业微信导出一致），查看。\n\n示例：opsctl community list",
                            no_args_is_help=True)

COLUMNS = [("public_id", "编号"), ("platform", "平台"), ("account", "账号"), ("title", "标题"), ("host", "主讲"),
           ("planned_start", "开播时间"), ("planned_minutes", "时长（分钟）"), ("status_label", "状态"),
           ("announcements", "预告数"), ("viewers", "观看人数"), ("peak_online", "最高在线")]
GROUP_COLUMNS = [("public_id", "编号"), ("name", "群名称"), ("department", "科室"), ("owner", "群主"), ("active", "在用")]
IdArg = Annotated[str, typer.Argument(help="直播编号 liv_...")]


def _show(view: live_service.LiveView, fmt: Format) -> None:
    data = {k: getattr(view, k) for k, _ in COLUMNS} | {"status": view.status, "plan": view.plan}
    render_object(data, dict(COLUMNS) | {"status": "状态代码", "plan": "直播计划"}, fmt)


@app.command("schedule")
def schedule(
    title: Annotated[str, typer.Argument(help="直播标题")],
    platform: Annotated[Platform, typer.Option(help="douyin 或 channels")],
    account: Annotated[str, typer.Option(help="医院的直播账号名")],
    at: Annotated[str, typer.Option(help="开播时间（北京时间），如 \"2026-11-05 20:00\"")],
    plan: Annotated[str, typer.Option(help="直播计划：内容提纲（至少 20 字）")],
    minutes: Annotated[int, typer.Option(help="计划时长（分钟）")] = 60,
    host: Annotated[str | None, typer.Option(help="主讲医生的员工编号 stf_...")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """排期一场直播。

    示例：opsctl live schedule 高血压直播答疑 --platform douyin --account 深大附院心内科 --at "2026-11-05 20:00" --plan "一、自测血压；二、降压药；三、答疑互动"
    """
    _show(live_service.schedule(container().uow(), operator(), platform=platform, account=account, title=title,
                                planned_start=parse_local(at), minutes=minutes, plan=plan, host_staff_id=host),
          choose(fmt, as_json))


@app.command("announce")
def announce(
    session_id: IdArg,
    group: Annotated[list[str] | None, typer.Option(help="社群编号 grp_...（可多次）")] = None,
    followers: Annotated[bool, typer.Option("--followers/--no-followers", help="是否给关注者发预告")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示预告文案，不记录")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """直播预告：生成给关注者与各社群的预告文案并登记（每个对象一次）。

    示例：opsctl live announce liv_0123 --group grp_0123 --dry-run
    """
    rows = live_service.announce(container().uow(), operator(), session_id, followers=followers,
                                 group_ids=tuple(group or ()), dry_run=dry_run)
    render(rows, [("target", "对象"), ("target_name", "名称"), ("text", "预告文案")], choose(fmt, as_json),
           title="预告（预演，未记录）" if dry_run else "已登记预告")


@app.command("start")
def start(session_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """开播。

    示例：opsctl live start liv_0123
    """
    _show(live_service.start(container().uow(), operator(), session_id), choose(fmt, as_json))


@app.command("end")
def end(session_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """结束直播。

    示例：opsctl live end liv_0123
    """
    _show(live_service.end(container().uow(), operator(), session_id), choose(fmt, as_json))


@app.command("cancel")
def cancel(session_id: IdArg, reason: Annotated[str, typer.Option(help="取消原因")],
           fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """取消尚未开播的直播。

    示例：opsctl live cancel liv_0123 --reason 医生临时手术
    """
    _show(live_service.cancel(container().uow(), operator(), session_id, reason), choose(fmt, as_json))


@app.command("list")
def list_(
    platform: Annotated[Platform | None, typer.Option(help="douyin 或 channels")] = None,
    status: Annotated[LiveStatus | None, typer.Option(help="scheduled、live、ended、cancelled")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出直播（含导入的观看数据）。

    示例：opsctl live list --platform douyin --json
    """
    render(live_service.list_sessions(container().uow(), operator(), platform=platform, status=status), COLUMNS,
           choose(fmt, as_json), title="直播")


@app.command("show")
def show(session_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """查看一场直播及其计划。

    示例：opsctl live show liv_0123
    """
    _show(live_service.get_session(container().uow(), operator(), session_id), choose(fmt, as_json))


@community_app.command("add")
def community_add(
    name: Annotated[str, typer.Argument(help="群名称（与企业微信导出一致）")],
    department: Annotated[str, typer.Option(help="科室")],
    owner: Annotated[str, typer.Option(help="群主（员工姓名）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """登记患者社群。

    示例：opsctl community add 心内科高血压患者群1 --department 心血管内科 --owner 王护士
    """
    render([live_service.add_group(container().uow(), operator(), name, department, owner)], GROUP_COLUMNS,
           choose(fmt, as_json))


@community_app.command("list")
def community_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出患者社群。

    示例：opsctl community list --json
    """
    render(live_service.list_groups(container().uow(), operator()), GROUP_COLUMNS, choose(fmt, as_json), title="患者社群")
