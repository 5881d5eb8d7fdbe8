"""opsctl rx: prescription rules, the drug catalogue (RX-4), dispensing stores and circulation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinical_core.adapters.drug_excel import read_catalogue
from clinical_core.domain.access import Principal
from clinical_core.domain.drug_catalogue import CatalogueRejected
from clinical_core.domain.prescription import RenewalStatus, RxStatus
from clinical_core.domain.prescription_rules import RULES
from clinical_core.domain.staff import Role
from clinical_core.services import (
    accounts,
    drug_catalogue,
    prescriptions,
    rx_circulation,
    rx_print,
    rx_renewals,
    signatures,
)
from opsctl.cli.commands import rx_his
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="处方：规则、药品目录、药房与流转（调配、发货）。\n\n示例：opsctl rx rules --json",
                  no_args_is_help=True)
catalogue_app = typer.Typer(help="药品目录。\n\n示例：opsctl rx catalogue import 药品目录.xlsx", no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")
renewals_app = typer.Typer(help="快速续方申请：查看、由原开方医生续方或拒绝。\n\n示例：opsctl rx renewals list --status requested",
                           no_args_is_help=True)
app.add_typer(renewals_app, name="renewals")
stores_app = typer.Typer(help="调配药房（院内药房或签约药店）。\n\n示例：opsctl rx stores list", no_args_is_help=True)
app.add_typer(stores_app, name="stores")
app.add_typer(rx_his.app, name="his")

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
        c = container()
        result = drug_catalogue.import_catalogue(c.uow(), operator(), read_catalogue(file), source=file.name,
                                                 integrated=c.settings.prescription_mode == "integrated")
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
    status: Annotated[RxStatus | None, typer.Option(help="pending_review、approved、rejected、voided、paid、dispensed、"
                                                         "shipped、delivered、refunded")] = None,
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


@app.command("print")
def print_(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    out: Annotated[Path, typer.Option("--out", "-o", help="输出 PDF 文件", dir_okay=False)],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """打印处方笺 PDF：两位签名人（医师、审核药师）、药品、诊断与供药房离线核验的二维码；患者姓名脱敏。

    只有药师审核通过、且两个签名都核验有效的处方才能打印。

    示例：opsctl rx print rx_0123 --out 处方.pdf
    """
    from clinical_core.adapters.rx_pdf import render_pdf

    c = container()
    printout = rx_print.printout(c.uow(), operator(), c.signer, rx_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render_pdf(printout))
    render([{"prescription_id": printout.prescription_id, "version": printout.version, "file": str(out),
             "signers": "、".join(f"{s.role_label}{s.name}" for s in printout.signers),
             "canonical_sha256": printout.canonical_sha256}],
           [("prescription_id", "处方"), ("version", "版本"), ("signers", "签名人"), ("file", "文件"),
            ("canonical_sha256", "处方摘要")], choose(fmt, as_json), title="处方已打印")


@app.command("verify-qr")
def verify_qr(
    qr: Annotated[str, typer.Argument(help="扫码得到的文本（RX1. 开头）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """核验打印处方上的二维码：两个签名是否有效、处方打印后是否被修改、能否调配（不可用时退出码 6）。

    示例：opsctl rx verify-qr RX1.eyJo... --json
    """
    c = container()
    check = rx_print.verify_qr(c.uow(), operator(), c.signer, qr)
    if choose(fmt, as_json) is Format.json:
        emit_json(check)
    else:
        render(list(check.signatures), [("role", "签名方"), ("name", "姓名"), ("serial", "证书序列号"),
                                        ("signed_at", "签名时间"), ("valid", "有效"), ("detail", "说明")],
               choose(fmt, as_json), title=f"处方 {check.prescription_id} 第 {check.version} 版：状态「{check.status_label}」，"
                                           f"{'可以调配' if check.usable else '不可调配'}")
        for problem in check.problems:
            typer.echo(f"问题：{problem}", err=True)
    if not check.usable:
        raise typer.Exit(6)


RENEWAL_COLUMNS = [("public_id", "申请"), ("status", "状态代码"), ("status_label", "状态"),
                   ("source_prescription_id", "原处方"), ("doctor_name", "原开方医生"), ("diagnoses", "诊断"),
                   ("drugs", "药品"), ("duplicates", "重复用药"), ("decline_reason", "拒绝原因"),
                   ("new_prescription_id", "新处方"), ("requested_at", "申请时间"), ("decided_at", "处理时间")]


def _renewal_row(view: rx_renewals.RenewalView) -> dict[str, object]:
    return {**_plain(view), "duplicates": "；".join(f"{d.generic_name}（{'、'.join(d.prescription_ids)}）"
                                                   for d in view.duplicates)}


@renewals_app.command("list")
def renewals_list(
    status: Annotated[RenewalStatus | None, typer.Option(help="requested、approved 或 declined")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 50,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出续方申请（最新在前），含与患者其他在用处方的重复用药提示。

    示例：opsctl rx renewals list --status requested --json
    """
    rows = rx_renewals.list_renewals(container().uow(), operator(), status=status, limit=limit)
    render([_renewal_row(r) for r in rows], RENEWAL_COLUMNS, choose(fmt, as_json), title="续方申请")


def _as_doctor(username: str) -> Principal:
    """The prescriber deciding at the hospital's console: their own account, key and signature."""
    from clinical_core.domain.errors import InvalidInput, NotFound

    accounts_ = [a for a in accounts.list_accounts(container().uow(), operator(), Role.DOCTOR) if a.username == username]
    if not accounts_:
        raise NotFound(f"未找到医生账号 {username}")
    account = accounts_[0]
    if not account.active or account.staff_id is None:
        raise InvalidInput("该医生账号已停用或未关联员工", field="doctor")
    return Principal(account.public_id, account.username, Role.DOCTOR, staff_id=account.staff_id)


@renewals_app.command("approve")
def renewals_approve(
    renewal_id: Annotated[str, typer.Argument(help="续方申请编号（rnw_...）")],
    doctor: Annotated[str, typer.Option(help="原开方医生的账号（用其证书签名）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """续方：原开方医生在院内终端确认，生成重新签名的新处方（全部规则校验，进入审方队列）。

    示例：opsctl rx renewals approve rnw_0123 --doctor dr.li --json
    """
    c = container()
    view = rx_renewals.decide_renewal(c.uow(), _as_doctor(doctor), c.his, c.signer, renewal_id, approve=True,
                                       his_rx=c.his_rx_port)
    render([_renewal_row(view)], RENEWAL_COLUMNS, choose(fmt, as_json), title="已续方（新处方待药师审核）")


@renewals_app.command("decline")
def renewals_decline(
    renewal_id: Annotated[str, typer.Argument(help="续方申请编号（rnw_...）")],
    doctor: Annotated[str, typer.Option(help="原开方医生的账号")],
    reason: Annotated[str, typer.Option(help="拒绝原因（患者可见），如「请先预约复诊」")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """拒绝续方并说明原因（原开方医生）。

    示例：opsctl rx renewals decline rnw_0123 --doctor dr.li --reason 请先预约复诊
    """
    c = container()
    view = rx_renewals.decide_renewal(c.uow(), _as_doctor(doctor), c.his, c.signer, renewal_id, approve=False,
                                      reason=reason)
    render([_renewal_row(view)], RENEWAL_COLUMNS, choose(fmt, as_json), title="已拒绝续方")


STORE_COLUMNS = [("code", "编码"), ("name", "名称"), ("address", "地址"), ("phone", "电话"),
                 ("agreement_no", "协议编号"), ("active", "在用"), ("public_id", "编号")]
CIRCULATION_COLUMNS = [("prescription_id", "处方"), ("status", "状态代码"), ("status_label", "状态"),
                       ("amount_fen", "药费(分)"), ("paid_fen", "已付(分)"), ("refunded_fen", "已退(分)"),
                       ("store_code", "药房"), ("dispensed_at", "调配时间"), ("carrier", "承运商"),
                       ("tracking_no", "运单号"), ("shipped_at", "发货时间"), ("delivered_at", "签收时间")]


@stores_app.command("add")
def stores_add(
    code: Annotated[str, typer.Argument(help="药房编码（字母、数字、- 或 _）")],
    name: Annotated[str, typer.Option(help="药房名称")],
    address: Annotated[str, typer.Option(help="地址")],
    phone: Annotated[str | None, typer.Option(help="药房电话")] = None,
    agreement_no: Annotated[str | None, typer.Option(help="合作协议编号（院外药店须有书面协议）")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """登记调配药房。

    示例：opsctl rx stores add PH-01 --name 院内药房 --address "门诊楼一层" --agreement-no HT-2026-01
    """
    view = rx_circulation.add_store(container().uow(), operator(), code, name, address, phone=phone,
                                    agreement_no=agreement_no)
    render([_plain(view)], STORE_COLUMNS, choose(fmt, as_json), title="药房已登记")


@stores_app.command("list")
def stores_list(
    include_inactive: Annotated[bool, typer.Option("--all", help="包括停用的药房")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出调配药房。

    示例：opsctl rx stores list --json
    """
    rows = rx_circulation.list_stores(container().uow(), operator(), include_inactive=include_inactive)
    render([_plain(r) for r in rows], STORE_COLUMNS, choose(fmt, as_json), title="调配药房", empty="尚未登记药房")


@app.command("track")
def track(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """查看处方流转：支付、退款（由记录推算）、药房、调配、物流。

    示例：opsctl rx track rx_0123 --json
    """
    view = rx_circulation.track(container().uow(), operator(), rx_id)
    render([_plain(view)], CIRCULATION_COLUMNS, choose(fmt, as_json), title="处方流转")


@app.command("dispense")
def dispense(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """调配：已支付且已选药房；再次验证医生签名与药师审核签名（R41）；调配即标记已使用，不可再用（R54）。

    示例：opsctl rx dispense rx_0123
    """
    c = container()
    view = rx_circulation.dispense(c.uow(), operator(), c.signer, rx_id, his=c.his_rx_port)
    render([_plain(view)], CIRCULATION_COLUMNS, choose(fmt, as_json), title="已调配")


@app.command("ship")
def ship(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    carrier: Annotated[str, typer.Option(help="承运商")],
    tracking_no: Annotated[str, typer.Option(help="运单号")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """发货：登记承运商与运单号。

    示例：opsctl rx ship rx_0123 --carrier 顺丰速运 --tracking-no SF1234567890
    """
    view = rx_circulation.ship(container().uow(), operator(), rx_id, carrier, tracking_no)
    render([_plain(view)], CIRCULATION_COLUMNS, choose(fmt, as_json), title="已发货")


@app.command("deliver")
def deliver(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """确认签收（依据承运商的签收凭证）。

    示例：opsctl rx deliver rx_0123
    """
    view = rx_circulation.confirm_delivery(container().uow(), operator(), rx_id)
    render([_plain(view)], CIRCULATION_COLUMNS, choose(fmt, as_json), title="已签收")


@app.command("refund")
def refund(
    rx_id: Annotated[str, typer.Argument(help="处方编号（rx_...）")],
    reason: Annotated[str, typer.Option(help="退款原因（最多 40 字）")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示将退的金额，不退款")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """药费退款：已支付、尚未调配的处方；退款单独记账并提交支付平台。

    示例：opsctl rx refund rx_0123 --reason 患者取消 --dry-run
    """
    c = container()
    if dry_run:
        view = rx_circulation.track(c.uow(), operator(), rx_id)
        render([_plain(view)], CIRCULATION_COLUMNS, choose(fmt, as_json), title="将退款（未执行）")
        return
    view = rx_circulation.refund_drugs(c.uow(), operator(), c.payments, rx_id, reason, his=c.his_rx_port)
    render([_plain(view)], CIRCULATION_COLUMNS, choose(fmt, as_json), title="已退款")
