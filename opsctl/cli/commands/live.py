"""opsctl live / opsctl community: 直播 on the hospital's accounts and 患者社群."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer

from content.domain.calendar import Platform
from content.domain.live import Audience, LiveStatus
from content.services import live as live_service
from opsctl.cli.commands.content import parse_local
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="直播：排期与直播计划、经推送引擎向关注者发预告并生成社群发布任务、改期、开播、结束、取消。\n\n"
                       "示例：opsctl live list --status scheduled",
                  no_args_is_help=True)
community_app = typer.Typer(help="患者社群：登记社群（名称与企业微信导出一致），查看。\n\n示例：opsctl community list",
                            no_args_is_help=True)

COLUMNS = [("public_id", "编号"), ("platform", "平台"), ("account", "账号"), ("title", "标题"), ("host", "主讲"),
           ("department", "科室"),
           ("planned_start", "开播时间"), ("planned_minutes", "时长（分钟）"), ("status_label", "状态"),
           ("announcements", "预告数"), ("viewers", "观看人数"), ("peak_online", "最高在线")]
GROUP_COLUMNS = [("public_id", "编号"), ("name", "群名称"), ("department", "科室"), ("owner", "群主"), ("active", "在用")]
IdArg = Annotated[str, typer.Argument(help="直播编号 liv_...")]
ANNOUNCEMENT_COLUMNS = [("public_id", "预告编号"), ("target_name", "对象"), ("state_label", "状态"), ("kind", "方式"),
                        ("send_at", "发送时间"), ("audience_size", "人数"), ("sent", "已送达"), ("failed", "失败"),
                        ("skipped", "按规则跳过"), ("pending", "待发"), ("push_id", "推送"), ("text", "文案")]
TASK_COLUMNS = [("public_id", "任务编号"), ("session_title", "直播"), ("target_name", "社群"), ("state_label", "状态"),
                ("text", "请发到群里的文案"), ("posted_at", "发布时间"), ("posted_by", "发布人")]
TemplateOpt = Annotated[Path | None, typer.Option("--group-template", help="社群文案的 jinja2 模板文件（UTF-8）",
                                                  exists=True, dir_okay=False)]
FollowersTemplateOpt = Annotated[Path | None, typer.Option("--followers-template",
                                                           help="关注者预告的 jinja2 模板文件（UTF-8）",
                                                           exists=True, dir_okay=False)]


def _announcements(rows: list[live_service.AnnouncementView], columns: list[tuple[str, str]], fmt: Format,
                   title: str | None = None) -> None:
    """Tables show ``columns``; JSON carries every field (state codes, ids, times)."""
    if fmt is Format.json:
        columns = [(f.name, f.name) for f in fields(live_service.AnnouncementView)]
    render(rows, columns, fmt, **({"title": title} if title else {}))


def _read(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8") if path is not None else None


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
    department: Annotated[str | None, typer.Option(help="科室代码（预告发给该科室的关注者；默认主讲医生的科室）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """排期一场直播。

    示例：opsctl live schedule 高血压直播答疑 --platform douyin --account 深大附院心内科 --at "2026-11-05 20:00" --plan "一、自测血压；二、降压药；三、答疑互动"
    """
    _show(live_service.schedule(container().uow(), operator(), platform=platform, account=account, title=title,
                                planned_start=parse_local(at), minutes=minutes, plan=plan, host_staff_id=host,
                                department=department),
          choose(fmt, as_json))


@app.command("announce")
def announce(
    session_id: IdArg,
    group: Annotated[list[str] | None, typer.Option(help="社群编号 grp_...（可多次）")] = None,
    followers: Annotated[bool, typer.Option("--followers/--no-followers", help="是否给关注者推送预告")] = True,
    kind: Annotated[str, typer.Option(help="关注者预告方式：mass（群发，每人每月 4 次）或 template（模板消息）")] = "mass",
    audience: Annotated[Audience, typer.Option(help="department（科室关注者）、doctor（主讲医生的患者）或 all")] =
    Audience.DEPARTMENT,
    send_at: Annotated[str | None, typer.Option(help="推送时间（北京时间），默认立即；免打扰时段顺延")] = None,
    group_template: TemplateOpt = None,
    followers_template: FollowersTemplateOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示文案与人数，不推送、不记录")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """直播预告：经推送引擎给关注者排一条推送（免打扰、频次上限、退订、每月 4 次群发均适用），并为每个社群生成发布任务。

    示例：opsctl live announce liv_0123 --group grp_0123 --kind template --send-at "2026-11-04 10:00" --dry-run
    """
    c = container()
    rows = live_service.announce(c.uow(), operator(), session_id, pushes=c.live_pushes, followers=followers, kind=kind,
                                 audience=audience, send_at=parse_local(send_at) if send_at else None,
                                 group_ids=tuple(group or ()), dry_run=dry_run,
                                 followers_template=_read(followers_template), group_template=_read(group_template))
    _announcements(rows, ANNOUNCEMENT_COLUMNS, choose(fmt, as_json),
                   "预告（预演：未推送、未记录）" if dry_run else "直播预告")


@app.command("announcements")
def announcements(session_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """查看一场直播的预告及其状态（关注者预告跟随推送：已排期、发送中、已发送人数、失败）。

    示例：opsctl live announcements liv_0123 --json
    """
    c = container()
    _announcements(live_service.announcements(c.uow(), operator(), session_id, pushes=c.live_pushes),
                   ANNOUNCEMENT_COLUMNS, choose(fmt, as_json), "直播预告")


@app.command("tasks")
def tasks(
    session_id: Annotated[str | None, typer.Option("--session", help="只看这场直播")] = None,
    all_: Annotated[bool, typer.Option("--all", help="包括已发布与已撤回的")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """社群发布任务：把文案发到各社群（社群不是微信接口的对象，由运营人员手工发布），发完用 posted 标记。

    示例：opsctl live tasks --session liv_0123
    """
    _announcements(live_service.group_tasks(container().uow(), operator(), session_id=session_id,
                                            include_done=all_), TASK_COLUMNS, choose(fmt, as_json), "社群发布任务")


@app.command("posted")
def posted(task_id: Annotated[str, typer.Argument(help="任务编号 ann_...")], fmt: FormatOpt = Format.table,
           as_json: JsonOpt = False) -> None:
    """标记社群文案已发布（记录发布人与时间）。

    示例：opsctl live posted ann_0123
    """
    _announcements([live_service.mark_posted(container().uow(), operator(), task_id)], TASK_COLUMNS,
                   choose(fmt, as_json))


@app.command("reschedule")
def reschedule(
    session_id: IdArg,
    at: Annotated[str, typer.Option(help="新的开播时间（北京时间），如 \"2026-11-06 20:00\"")],
    minutes: Annotated[int | None, typer.Option(help="新的时长（分钟），默认不变")] = None,
    group_template: TemplateOpt = None,
    followers_template: FollowersTemplateOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """改期：撤回旧时间尚未发出的预告（取消推送），按新时间重新预告给原来的对象。

    示例：opsctl live reschedule liv_0123 --at "2026-11-06 20:00"
    """
    c = container()
    _show(live_service.reschedule(c.uow(), operator(), session_id, parse_local(at), minutes=minutes,
                                  pushes=c.live_pushes, followers_template=_read(followers_template),
                                  group_template=_read(group_template)), choose(fmt, as_json))


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
    """取消尚未开播的直播：撤回未发出的预告（取消推送），已通知过的社群生成取消通知任务。

    示例：opsctl live cancel liv_0123 --reason 医生临时手术
    """
    c = container()
    _show(live_service.cancel(c.uow(), operator(), session_id, reason, pushes=c.live_pushes), choose(fmt, as_json))


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
