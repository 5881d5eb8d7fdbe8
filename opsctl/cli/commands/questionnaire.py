"""opsctl questionnaire: 随访问卷 — define, revise, read answers, export to Excel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from campaigns.services import questionnaires as service
from clinical_core.domain.errors import InvalidInput
from opsctl.cli.output import (
    Format,
    FormatOpt,
    JsonOpt,
    choose,
    info,
    render,
    render_object,
)
from opsctl.cli.progress import progress
from opsctl.cli.state import container, operator

app = typer.Typer(help="随访问卷：定义（单选、多选、数值、文本）、修订、查看答卷与导出 Excel。\n\n"
                       "示例：opsctl questionnaire export qnr_0123 --xlsx 答卷.xlsx", no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="问卷编号，如 qnr_...")]
COLUMNS = [("questionnaire_id", "编号"), ("title", "标题"), ("version", "版本"), ("owner", "创建医生"),
           ("responses", "答卷数"), ("updated_at", "更新时间")]
RESPONSE_COLUMNS = [("response_id", "答卷"), ("version", "版本"), ("patient_id", "患者编号"), ("patient_name", "患者"),
                    ("submitted_at", "提交时间"), ("answers", "答案")]


def read_document(path: Path) -> Any:
    """A JSON or YAML file."""
    if not path.is_file():
        raise InvalidInput(f"文件不存在：{path}")
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError):
        raise InvalidInput(f"无法解析 {path.name}（应为 JSON 或 YAML）") from None


def _show(view: service.QuestionnaireView, fmt: Format) -> None:
    if fmt is Format.json:
        render_object({k: getattr(view, k) for k in view.__dataclass_fields__}, {}, fmt)
        return
    render_object({k: getattr(view, k) for k, _ in COLUMNS}, dict(COLUMNS), fmt, title=view.title)
    render([{"key": q["key"], "kind": q["kind"], "title": q["title"], "required": q.get("required", True),
             "options": q.get("options", []),
             "range": "" if q["kind"] != "number" else f"{q.get('min') or ''}～{q.get('max') or ''}{q.get('unit') or ''}"}
            for q in view.definition["questions"]],
           [("key", "编号"), ("kind", "题型"), ("title", "题目"), ("required", "必答"), ("options", "选项"),
            ("range", "范围")], fmt, title="题目")


@app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="问卷定义（YAML 或 JSON：title 与 questions）")],
    owner: Annotated[str, typer.Option("--owner", help="所属医生（工号或 stf_ 编号）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按文件定义一份问卷，归属指定医生。题型：single、multiple、number（min/max/unit）、text。

    示例：opsctl questionnaire create 高血压问卷.yaml --owner D0001
    """
    _show(service.create(container().uow(), operator(), read_document(file), owner=owner), choose(fmt, as_json))


@app.command("revise")
def revise(questionnaire_id: IdArg, file: Annotated[Path, typer.Argument(help="新的问卷定义")],
           fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """修订问卷：尚无答卷时原地修改；已有答卷时生成新版本（旧答卷仍对应旧版本）。

    示例：opsctl questionnaire revise qnr_0123 高血压问卷-v2.yaml
    """
    _show(service.revise(container().uow(), operator(), questionnaire_id, read_document(file)), choose(fmt, as_json))


@app.command("list")
def list_(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出问卷。

    示例：opsctl questionnaire list --json
    """
    render(service.list_questionnaires(container().uow(), operator()), COLUMNS, choose(fmt, as_json), title="问卷")


@app.command("show")
def show(questionnaire_id: IdArg, fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """查看问卷当前版本的题目。

    示例：opsctl questionnaire show qnr_0123
    """
    _show(service.get(container().uow(), operator(), questionnaire_id), choose(fmt, as_json))


@app.command("responses")
def responses(
    questionnaire_id: IdArg,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 200,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """查看答卷（患者姓名脱敏；读取写入审计日志）。

    示例：opsctl questionnaire responses qnr_0123 --json
    """
    render(service.list_responses(container().uow(), operator(), questionnaire_id, limit=limit), RESPONSE_COLUMNS,
           choose(fmt, as_json), title="答卷")


@app.command("export")
def export(
    questionnaire_id: IdArg,
    xlsx: Annotated[Path, typer.Option("--xlsx", help="输出的 Excel 文件")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """把全部答卷导出为 Excel（流式写入；每份答卷一行、每道题一列，各版本按题目编号合并；患者姓名脱敏）。

    示例：opsctl questionnaire export qnr_0123 --xlsx 高血压答卷.xlsx
    """
    with progress("导出答卷", total=None):
        result = service.export_xlsx(container().uow(), operator(), questionnaire_id, xlsx)
    render_object({"questionnaire_id": result.questionnaire_id, "path": result.path, "responses": result.responses,
                   "versions": result.versions},
                  {"questionnaire_id": "问卷", "path": "文件", "responses": "答卷数", "versions": "版本数"},
                  choose(fmt, as_json), title="已导出")
    if not as_json and fmt is Format.table:
        info(f"已写入 {xlsx}")
