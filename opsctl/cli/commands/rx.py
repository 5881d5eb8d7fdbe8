"""opsctl rx: prescription rules and the drug catalogue (RX-4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinical_core.adapters.drug_excel import read_catalogue
from clinical_core.domain.drug_catalogue import CatalogueRejected
from clinical_core.domain.prescription import RxStatus
from clinical_core.domain.prescription_rules import RULES
from clinical_core.services import drug_catalogue, prescriptions, signatures
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="处方：规则与药品目录。\n\n示例：opsctl rx rules --json", no_args_is_help=True)
catalogue_app = typer.Typer(help="药品目录。\n\n示例：opsctl rx catalogue import 药品目录.xlsx", no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")

SEVERITY_LABELS = {"block": "拦截", "needs_reason": "需注明理由", "warn": "提示"}


@app.command("rules")
def rules(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出处方规则：编码、级别（block 拦截 / needs_reason 需注明理由 / warn 提示）与法规出处。

    示例：opsctl rx rules --json
    """
    rows = [{"code": r.code, "severity": r.severity.value, "severity_label": SEVERITY_LABELS[r.severity.value],
             "title": r.title, "source": r.source} for r in RULES]
    render(rows, [("code", "编码"), ("severity", "级别代码"), ("severity_label", "级别"), ("title", "规则"),
                  ("source", "出处")], choose(fmt, as_json), title="处方规则")


@catalogue_app.command("import")
def catalogue_import(
    file: Annotated[Path, typer.Argument(help="Excel 文件（.xlsx），首行为表头", exists=True, dir_okay=False)],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """从 Excel 导入药品目录：全部正确才导入，否则逐行列出错误、一种也不导入。

    表头：药品编码、通用名、商品名、规格、剂型、单位、价格(元)、类别、管制类别、处方药。

    示例：opsctl rx catalogue import 药品目录.xlsx --json
    """
    try:
        result = drug_catalogue.import_catalogue(container().uow(), operator(), read_catalogue(file),
                                                 source=file.name)
    except CatalogueRejected as exc:
        for line in exc.row_errors[:200]:
            typer.echo(line, err=True)
        if len(exc.row_errors) > 200:
            typer.echo(f"……另有 {len(exc.row_errors) - 200} 处错误", err=True)
        raise
    render([result], [("rows", "行数"), ("created", "新增"), ("updated", "更新")], choose(fmt, as_json),
           title="药品目录已导入")


@app.command("list")
def list_(
    status: Annotated[RxStatus | None, typer.Option(help="pending_review、approved、rejected、voided")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 50,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出处方（不含患者姓名；药品与诊断用于审核与追溯）。

    示例：opsctl rx list --status pending_review --json
    """
    rows = prescriptions.list_prescriptions(container().uow(), operator(), status=status, limit=limit)
    render([{**_plain(r), "drugs": "、".join(i.generic_name for i in r.items),
             "review_count": len(r.reviews)} for r in rows],
           [("public_id", "处方"), ("status", "状态代码"), ("status_label", "状态"), ("version", "版本"),
            ("doctor_name", "医生"), ("diagnoses", "诊断"), ("drugs", "药品"), ("warnings", "提示"),
            ("review_count", "审核次数"), ("issued_at", "开具时间"), ("consultation_id", "咨询")],
           choose(fmt, as_json), title="处方")


def _plain(row: object) -> dict[str, object]:
    return {k: getattr(row, k) for k in row.__dataclass_fields__}  # type: ignore[attr-defined]


@app.command("verify")
def verify(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """验证处方的签名链：谁在何时签了哪个版本，内容签名后是否被修改（任一无效则退出码 6）。

    示例：opsctl rx verify rx_0123 --json
    """
    c = container()
    checks = signatures.verify_prescription(c.uow(), operator(), c.signer, rx_id)
    render(checks, [("version", "版本"), ("role", "签名方"), ("name", "姓名"), ("staff_id", "员工"),
                    ("serial", "证书序列号"), ("signed_at", "签名时间"), ("valid", "有效"), ("detail", "说明")],
           choose(fmt, as_json), title="处方签名", empty="该处方没有签名")
    current = max((x.version for x in checks), default=0)
    if not checks or not all(x.valid for x in checks if x.version == current):
        raise typer.Exit(6)
