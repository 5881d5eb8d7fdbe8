"""opsctl push: template messages and mass sends to saved audiences, through the delivery ledger."""

from __future__ import annotations

import signal
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from campaigns.domain import pushes as P
from campaigns.services import delivery
from campaigns.services import pushes as service
from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.time import SHANGHAI
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, info, render, render_object
from opsctl.cli.state import container, operator
from opsctl.wiring import delivery_rules, rules_from

app = typer.Typer(help="推送：模板消息与群发，按人群发送，逐人记账（投递台账）。\n\n示例：opsctl push status --json",
                  no_args_is_help=True)
segment_app = typer.Typer(help="保存的人群（标签、科室/医生、最近问诊、渠道、漏斗阶段；自动排除退订）。\n\n"
                          "示例：opsctl push segment create 心内科复诊 --rule department=CARD --rule consulted_within_days=90",
                          no_args_is_help=True)
app.add_typer(segment_app, name="segment")

PUSH_COLUMNS = [("public_id", "编号"), ("name", "名称"), ("kind", "类型"), ("status_label", "状态"), ("segment", "人群"),
                ("scheduled_at", "计划时间"), ("audience_size", "人数"), ("winner", "胜出")]
COUNT_LABELS = {s.value: P.STATE_LABELS[s] for s in P.DeliveryState}
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="只显示将要发生什么，不发送")]


def _sender():  # noqa: ANN202
    from campaigns.adapters.push_sender import WeChatPushSender

    return WeChatPushSender(container().wechat)


def _pairs(values: list[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{what} 应写成 键=值", field=what)
        value = value.strip()
        out[key.strip()] = int(value) if value.isdigit() else value
    return out


@app.command("templates")
def templates(
    sync: Annotated[bool, typer.Option("--sync", help="先从微信同步模板列表")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出（或先同步）公众号的模板消息模板及其字段。

    示例：opsctl push templates --sync
    """
    c = container()
    if not sync:
        raise InvalidInput("当前只支持 --sync：从微信读取模板列表", field="sync")
    rows = service.sync_templates(c.uow(), operator(), _sender())
    render([dict(template_id=r.template_id, title=r.title, fields="、".join(r.fields), active=r.active) for r in rows],
           [("template_id", "模板 ID"), ("title", "标题"), ("fields", "字段"), ("active", "可用")],
           choose(fmt, as_json), title="模板")


@segment_app.command("create")
def segment_create(
    name: Annotated[str, typer.Argument(help="人群名称")],
    rule: Annotated[list[str], typer.Option("--rule", help="条件 键=值：tag、department、doctor、"
                                                           "consulted_within_days、channel、stage")] = [],  # noqa: B006
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """保存一个人群并显示当前人数（已退订者不计）。

    示例：opsctl push segment create 心内科复诊 --rule department=CARD --rule consulted_within_days=90
    """
    c = container()
    view = service.create_segment(c.uow(), operator(), name, _pairs(rule, "rule"), _sender())
    render([view], [("public_id", "编号"), ("name", "名称"), ("rules", "条件"), ("size", "当前人数")],
           choose(fmt, as_json), title="已保存人群")


@segment_app.command("list")
def segment_list(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出人群及当前人数。

    示例：opsctl push segment list --json
    """
    c = container()
    render(service.list_segments(c.uow(), operator(), _sender()),
           [("public_id", "编号"), ("name", "名称"), ("rules", "条件"), ("size", "当前人数")], choose(fmt, as_json),
           title="人群")


@app.command("optout")
def optout(
    openid: Annotated[str, typer.Argument(help="关注者 openid")],
    undo: Annotated[bool, typer.Option("--undo", help="撤销退订")] = False,
) -> None:
    """把关注者加入（或移出）退订名单；退订者不再收到任何推送。

    示例：opsctl push optout oAbc123 --undo
    """
    c = container()
    changed = service.opt_in(c.uow(), operator(), openid) if undo else service.opt_out(c.uow(), operator(), openid)
    info(("已移出退订名单" if undo else "已加入退订名单") if changed else "名单无变化")


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="推送名称")],
    segment: Annotated[str, typer.Option(help="人群名称或编号")],
    kind: Annotated[str, typer.Option(help="template（模板消息）或 mass（群发）")] = "template",
    template: Annotated[str | None, typer.Option(help="模板 ID（模板消息）")] = None,
    field: Annotated[list[str], typer.Option("--field", help="模板字段 键=jinja2 文本，如 first={{ patient.salutation }}您好")] = [],  # noqa: B006
    url: Annotated[str | None, typer.Option(help="模板消息点击后打开的链接")] = None,
    text: Annotated[str | None, typer.Option(help="群发文字")] = None,
    msgtype: Annotated[str, typer.Option(help="群发类型：text、image、mpnews（图文）")] = "text",
    media_id: Annotated[str | None, typer.Option(help="图片或图文素材 media_id")] = None,
    variants: Annotated[Path | None, typer.Option(help="A/B 变体文件（YAML：A: {...}, B: {...}）", exists=True)] = None,
    ab_metric: Annotated[str | None, typer.Option(help="A/B 胜出指标：ctr 或 conversion")] = None,
    ab_hours: Annotated[int | None, typer.Option(help="发出多少小时后判定胜出")] = None,
    ab_share: Annotated[int, typer.Option(help="参与 A/B 测试的人群比例（%），其余等待胜出版本")] = 100,
    link: Annotated[str | None, typer.Option(help="跟踪链接的目标地址（生成短链，按推送/变体/渠道计点击）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建推送草稿（检查模板字段、20 字规则与变量）。

    示例：opsctl push create --name 复诊提醒 --segment 心内科复诊 --template tpl_sandbox_notice --field "first={{ patient.salutation }}您好"
    """
    c = container()
    if variants is not None:
        loaded = yaml.safe_load(variants.read_text(encoding="utf-8")) or {}
        content = {str(k): dict(v) for k, v in loaded.items()}
    elif kind == "template":
        content = {"A": {"template_id": template, "fields": _pairs(field, "field"), "url": url}}
    else:
        content = {"A": {"msgtype": msgtype, "text": text, "media_id": media_id}}
    view = service.create_push(c.uow(), operator(), name=name, kind=kind, segment=segment, variants=content,
                               ab_metric=ab_metric, ab_decide_after_hours=ab_hours, ab_test_share=ab_share, link=link)
    render([view], PUSH_COLUMNS, choose(fmt, as_json), title="已创建推送草稿")


@app.command("preview")
def preview(
    push: Annotated[str, typer.Argument(help="推送编号")],
    to: Annotated[list[str], typer.Option("--to", help="测试 openid（可多次）")],
    variant: Annotated[str | None, typer.Option(help="变体（默认 A）")] = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """把推送发给指定的测试 openid（不进台账、不计频次）。

    示例：opsctl push preview push_ab12 --to oTest1 --dry-run
    """
    c = container()
    result = service.preview(c.uow(), operator(), _sender(), push, to, variant=variant, dry_run=dry_run)
    if as_json:
        emit_json(result)
        return
    for key, value in result.rendered.items():
        typer.echo(f"{key}: {value}")
    info(f"试运行：未发送（{len(result.recipients)} 个测试号）" if dry_run else f"已发送 {result.sent}/{len(result.recipients)}")


@app.command("schedule")
def schedule(
    push: Annotated[str, typer.Argument(help="推送编号")],
    at: Annotated[str | None, typer.Option(help="北京时间，如 '2026-11-03 09:30'；默认立即")] = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """排期：到时由定时任务生成台账，由 push worker 发送；免打扰时段内的时间顺延到结束时。

    示例：opsctl push schedule push_ab12 --at "2026-11-03 09:30"
    """
    c = container()
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at).replace(tzinfo=SHANGHAI)
        except ValueError:
            raise InvalidInput("时间格式应为 2026-11-03 09:30", field="at") from None
    if dry_run:
        view = service.status(c.uow(), operator(), push)[0]
        size = service.count_audience(c.uow(), operator(), view.segment or "", _sender())
        rules = rules_from(c.settings)
        moment = rules.quiet.next_allowed(max(when or c.clock.now(), c.clock.now()), SHANGHAI)
        data = {"push": view.public_id, "audience": size, "at": moment, "dry_run": True}
        if as_json:
            emit_json(data)
        else:
            info(f"试运行：将于 {moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 发给当前 {size} 人（未排期）")
        return
    view = service.schedule(c.uow(), operator(), push, when, rules_from(c.settings))
    render([view], PUSH_COLUMNS, choose(Format.table, as_json), title="已排期")


@app.command("cancel")
def cancel(push: Annotated[str, typer.Argument(help="推送编号")], as_json: JsonOpt = False) -> None:
    """取消推送：尚未发出的接收者不再发送（已交给微信的无法撤回）。

    示例：opsctl push cancel push_ab12
    """
    c = container()
    view = service.cancel(c.uow(), operator(), push)
    render([view], PUSH_COLUMNS, choose(Format.table, as_json), title="已取消")


@app.command("status")
def status(
    push: Annotated[str | None, typer.Argument(help="推送编号（默认全部）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """推送及其台账：待发送、发送中、已送达、失败、待核对、跳过的人数。

    示例：opsctl push status push_ab12 --json
    """
    c = container()
    views = service.status(c.uow(), operator(), push)
    chosen = choose(fmt, as_json)
    if chosen is Format.json:
        emit_json(views)
        return
    rows = [dict(asdict(v), **{f"n_{k}": n for k, n in v.counts.items()}) for v in views]
    render(rows, PUSH_COLUMNS + [(f"n_{k}", label) for k, label in COUNT_LABELS.items()], chosen, title="推送")


@app.command("dispatch")
def dispatch(dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """立即运行一次排期任务：把到期推送生成台账（定时任务通常每分钟运行）。

    示例：opsctl push dispatch --dry-run
    """
    c = container()
    if dry_run:
        due = [v for v in service.status(c.uow(), operator()) if v.status == "scheduled"
               and v.scheduled_at is not None and v.scheduled_at <= c.clock.now()]
        info(f"试运行：{len(due)} 条推送到期")
        return
    planned = service.dispatch_due(c.uow(), c.clock.now(), api=_sender(), rules=rules_from(c.settings))
    render_object({"pushes": planned.pushes, "rows": planned.rows, "skipped": planned.skipped},
                  {"pushes": "推送数", "rows": "待发送", "skipped": "按规则跳过"}, choose(Format.table, as_json))


@app.command("settle")
def settle(as_json: JsonOpt = False) -> None:
    """核对「待核对」的台账行：按微信的发送结果事件结算，必要时在微信去重窗口内用同一去重键重发。

    示例：opsctl push settle --json
    """
    from campaigns.services.render import make_renderer

    c = container()
    result = delivery.settle_unknown(c.uow(), c.clock.now(), sender=_sender(),
                                     render=make_renderer(c.settings.http.public_base_url))
    render_object({"sent": result.sent, "failed": result.failed, "resent": result.resent, "waiting": result.waiting},
                  {"sent": "确认送达", "failed": "确认失败", "resent": "去重重发", "waiting": "等待事件"},
                  choose(Format.table, as_json))


@app.command("worker")
def worker(
    rate: Annotated[float | None, typer.Option(help="每秒最多调用次数（同一公众号的所有发送进程共享；默认配置 push.rate_per_second，0 不限）")] = None,
    batch: Annotated[int, typer.Option(help="每次领取的台账行数")] = 100,
    concurrency: Annotated[int, typer.Option(help="同时进行的微信调用数（线程，各用一条长连接）")] = 4,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="没有到期的行时退出")] = False,
    lease: Annotated[int, typer.Option(help="启动时把领取超过这么多秒仍在「发送中」的行记为待核对")] = 120,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """发送进程：领取到期的台账行（PostgreSQL 可多进程多机），限速，重试临时错误，绝不重复发送。

    示例：opsctl push worker --rate 50 --until-idle
    """
    from datetime import timedelta

    from campaigns.services.render import make_renderer

    c = container()
    if dry_run:
        views = service.status(c.uow(), operator())
        pending = sum(v.counts["pending"] for v in views if v.status == "sending")
        info(f"试运行：{pending} 行待发送（未领取）")
        return
    stopping = {"flag": False}

    def _stop(*_args: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from campaigns.services.ratelimit import SharedRateLimiter

    delivery.recover_stale(c.uow(), lease=timedelta(seconds=lease))
    limiter = SharedRateLimiter(c.uow, c.settings.wechat.app_id,  # WeChat's limit is per official account
                                c.settings.push.rate_per_second if rate is None else rate)
    counts = delivery.run_worker(
        c.uow, _sender(), make_renderer(c.settings.http.public_base_url), rules=delivery_rules(c.settings),
        limiter=limiter, batch=batch, until_idle=until_idle, concurrency=concurrency,
        should_stop=lambda: stopping["flag"])
    data = {"calls": counts.calls, "sent": counts.sent, "failed": counts.failed, "retried": counts.retried,
            "unknown": counts.unknown, "skipped": counts.skipped}
    if as_json:
        emit_json(data)
    else:
        render_object(data, {"calls": "调用次数", "sent": "送达", "failed": "失败", "retried": "稍后重试",
                             "unknown": "待核对", "skipped": "跳过"}, Format.table)
