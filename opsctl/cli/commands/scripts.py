"""opsctl scripts: the talk-script library (话术库) with compliance linting and medical review."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from content.scripts import services as scripts
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, info, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="话术库：私聊话术、社群文案、朋友圈科普、活动策划；合规检查与医学审核。\n\n"
                       "示例：opsctl scripts search \"患者问降压药能不能停\"", no_args_is_help=True)

COLUMNS = [("public_id", "话术编号"), ("title", "标题"), ("channel", "渠道"), ("specialty", "专科"),
           ("status", "状态"), ("version", "版本"), ("approved_version", "在用版本"), ("findings", "合规提示"),
           ("usage_count", "使用次数")]
FINDING_COLUMNS = [("severity", "级别"), ("term", "用语"), ("rule_name", "规则"), ("source", "依据")]


def _findings(v: scripts.ScriptView) -> str:
    return "；".join(f"{'禁止' if f.severity == 'block' else '提示'}「{f.term}」{f.rule_name}" for f in v.findings) or "无"


def _show(views: list[scripts.ScriptView], fmt: Format, title: str) -> None:
    if fmt is Format.json:
        emit_json([dataclasses.asdict(v) for v in views])
        return
    render([{**dataclasses.asdict(v), "findings": _findings(v)} for v in views], COLUMNS, fmt, title=title)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p for p in (value or "").replace("，", ",").replace("|", ",").split(",") if p.strip())


@app.command("add")
def add(
    title: Annotated[str, typer.Option(help="标题")],
    channel: Annotated[str, typer.Option(help="渠道：私聊、社群、朋友圈、活动")],
    specialty: Annotated[str, typer.Option(help="专科")],
    body: Annotated[str, typer.Option(help="正文，可用变量 {{患者称呼}} {{医生}} {{科室}}")],
    tags: Annotated[str | None, typer.Option(help="标签，逗号分隔")] = None,
    alternatives: Annotated[str | None, typer.Option(help="患者的其他问法，用 | 分隔")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建话术（草稿），保存时进行广告法合规检查。

    示例：opsctl scripts add --title 降压药能否停药 --channel 私聊 --specialty 心血管内科 --body "{{患者称呼}}您好，降压药请不要自行停药，{{医生}}建议先测血压。"
    """
    view = scripts.add_script(container().uow(), operator(), scripts.NewScript(
        title, channel, specialty, body, _split(tags), tuple(a for a in (alternatives or "").split("|") if a.strip())))
    _show([view], choose(fmt, as_json), "已保存草稿")


@app.command("edit")
def edit(
    script_id: Annotated[str, typer.Argument(help="话术编号 scr_...")],
    body: Annotated[str | None, typer.Option(help="新正文")] = None,
    title: Annotated[str | None, typer.Option(help="新标题")] = None,
    alternatives: Annotated[str | None, typer.Option(help="其他问法，用 | 分隔")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """修改话术：生成新版本（草稿），已通过的旧版本在新版本通过前继续使用。

    示例：opsctl scripts edit scr_0123456789abcdef01234567 --body "新的正文"
    """
    alts = None if alternatives is None else [a for a in alternatives.split("|") if a.strip()]
    view = scripts.edit_script(container().uow(), operator(), script_id, body=body, title=title, alternatives=alts)
    _show([view], choose(fmt, as_json), "已保存新版本")


@app.command("review")
def review(
    script_id: Annotated[str, typer.Argument(help="话术编号")],
    reject: Annotated[str | None, typer.Option("--reject", help="医生退回修改，写明原因")] = None,
    reviewer: Annotated[str | None, typer.Option(help="审核医生姓名（管理员代录时必填）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """提交医学审核；或由医生以 --reject 退回修改。

    示例：opsctl scripts review scr_0123456789abcdef01234567
    """
    c, who = container(), operator()
    if reject is None:
        view = scripts.submit_for_review(c.uow(), who, script_id)
    else:
        view = scripts.reject(c.uow(), who, script_id, reject, reviewer=reviewer)
    _show([view], choose(fmt, as_json), "审核状态")


@app.command("approve")
def approve(
    script_id: Annotated[str, typer.Argument(help="话术编号")],
    reviewer: Annotated[str | None, typer.Option(help="审核医生姓名（管理员代录时必填）")] = None,
    note: Annotated[str, typer.Option(help="审核意见")] = "",
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """医学审核通过：该版本开始对客服可见。

    示例：opsctl scripts approve scr_0123456789abcdef01234567 --reviewer 李明
    """
    c = container()
    view = scripts.approve(c.uow(), operator(), script_id, reviewer=reviewer, note=note, index=c.scripts_index)
    _show([view], choose(fmt, as_json), "已通过")


@app.command("retire")
def retire(script_id: Annotated[str, typer.Argument(help="话术编号")], fmt: FormatOpt = Format.table,
           as_json: JsonOpt = False) -> None:
    """停用话术：客服不再能检索和使用。

    示例：opsctl scripts retire scr_0123456789abcdef01234567
    """
    c = container()
    _show([scripts.retire(c.uow(), operator(), script_id, index=c.scripts_index)], choose(fmt, as_json), "已停用")


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="draft、in_review、approved、retired")] = None,
    channel: Annotated[str | None, typer.Option(help="渠道")] = None,
    specialty: Annotated[str | None, typer.Option(help="专科")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出话术（最新版本、合规提示、使用次数）。

    示例：opsctl scripts list --status approved --channel 私聊
    """
    views = scripts.list_scripts(container().uow(), operator(), status=status, channel=channel, specialty=specialty)
    _show(views, choose(fmt, as_json), "话术")


@app.command("lint")
def lint_(
    script_id: Annotated[str, typer.Argument(help="话术编号")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """显示最新版本的合规检查结果：用语、规则与依据。

    示例：opsctl scripts lint scr_0123456789abcdef01234567 --json
    """
    views = [v for v in scripts.list_scripts(container().uow(), operator()) if v.public_id == script_id]
    render([f for v in views for f in v.findings], FINDING_COLUMNS, choose(fmt, as_json), title="合规检查",
           empty="（未发现问题）" if views else "（没有这条话术）")


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="患者的问题")],
    channel: Annotated[str | None, typer.Option(help="渠道")] = None,
    specialty: Annotated[str | None, typer.Option(help="专科")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="返回条数")] = 3,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """客服检索已通过审核的话术。

    示例：opsctl scripts search "患者问降压药能不能停" --json
    """
    c = container()
    hits = scripts.search(c.uow(), operator(), c.scripts_index, query, k=k, channel=channel, specialty=specialty,
                          weights=c.search_weights, rrf_k=c.settings.search.rrf_k)
    render(hits, [("rank", "名次"), ("public_id", "话术编号"), ("title", "标题"), ("channel", "渠道"),
                  ("body", "正文"), ("usage_count", "使用次数")], choose(fmt, as_json), title="话术检索",
           empty="（没有找到已通过审核的话术）")


@app.command("render")
def render_(
    script_id: Annotated[str, typer.Argument(help="话术编号")],
    var: Annotated[list[str] | None, typer.Option("--var", help="变量，如 --var 医生=李明")] = None,
    record: Annotated[str | None, typer.Option("--record", help="同时记录使用：copied 或 sent")] = None,
) -> None:
    """填入变量生成可发送的文本（缺少变量会报错）。

    示例：opsctl scripts render scr_0123456789abcdef01234567 --var 患者称呼=张先生 --var 医生=李明 --var 科室=心内科 --record copied
    """
    pairs = dict(v.split("=", 1) for v in (var or []) if "=" in v)
    c, who = container(), operator()
    typer.echo(scripts.render_script(c.uow(), who, script_id, pairs))
    if record:
        scripts.record_use(c.uow(), who, script_id, record)


@app.command("use")
def use(
    script_id: Annotated[str, typer.Argument(help="话术编号")],
    action: Annotated[str, typer.Option(help="copied（复制）或 sent（发送）")] = "copied",
) -> None:
    """记录客服使用了某条话术，供报表统计。

    示例：opsctl scripts use scr_0123456789abcdef01234567 --action sent
    """
    count = scripts.record_use(container().uow(), operator(), script_id, action)
    info(f"已记录，累计使用 {count} 次")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="Excel 文件：标题、渠道、专科、标签、相似问法、正文")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """从 Excel 导入话术为草稿，逐条合规检查。

    示例：opsctl scripts import 话术库.xlsx
    """
    rows = scripts.import_xlsx(container().uow(), operator(), path)
    render(rows, [("row", "行"), ("public_id", "话术编号"), ("title", "标题"), ("blocked", "有禁止用语"),
                  ("findings", "合规提示数")], choose(fmt, as_json), title="导入结果")


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="输出的 Excel 文件")],
    status: Annotated[str | None, typer.Option(help="只导出某个状态")] = None,
) -> None:
    """导出话术到 Excel（可再导入）。

    示例：opsctl scripts export 话术库.xlsx --status approved
    """
    n = scripts.export_xlsx(container().uow(), operator(), path, status)
    info(f"已导出 {n} 条话术到 {path}")
