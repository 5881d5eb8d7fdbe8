"""opsctl rx his: the integrated (HIS) mode of prescriptions (RX-5): catalogue sync and status."""

from __future__ import annotations

from typing import Annotated

import typer

from clinical_core.domain.drug_catalogue import CatalogueRejected
from clinical_core.domain.his_sync import FIELD_LABELS
from clinical_core.services import rx_his
from opsctl.cli.output import (
    Format,
    FormatOpt,
    JsonOpt,
    choose,
    emit_json,
    render,
    render_object,
)
from opsctl.cli.state import container, operator

app = typer.Typer(help="集成模式（HIS）：药品目录同步、待核对的 HIS 操作。\n\n示例：opsctl rx his status --json",
                  no_args_is_help=True)

MODE_LABELS = {"standalone": "单机模式（Excel 目录、本地支付与调配）", "integrated": "集成模式（经 HIS）"}


@app.command("sync-catalogue")
def sync_catalogue(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出差异（新增、变更、停用），不写入")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """从 HIS 同步药品目录：列出新增、变更（含管制类别、价格）与停用的药品；全部成功才生效，否则一种也不改。

    停用的药品保留在目录中（历史处方引用），但不能再开具。仅集成模式可用。

    示例：opsctl rx his sync-catalogue --dry-run --json
    """
    c = container()
    try:
        report = rx_his.sync_catalogue(c.uow(), operator(), c.his_rx_port, dry_run=dry_run)
    except CatalogueRejected as exc:
        for line in exc.row_errors[:200]:
            typer.echo(line, err=True)
        raise
    if choose(fmt, as_json) is Format.json:
        emit_json(report)
        return
    rows = ([{"change": "新增", "code": code, "fields": ""} for code in report.added]
            + [{"change": "变更", "code": ch.code, "fields": "、".join(FIELD_LABELS[f] for f in ch.fields)}
               for ch in report.changed]
            + [{"change": "停用", "code": code, "fields": ""} for code in report.withdrawn])
    summary = (f"新增 {len(report.added)}，变更 {len(report.changed)}，停用 {len(report.withdrawn)}，"
               f"未变 {report.unchanged}（HIS 共 {report.his_total} 种）")
    title = f"药品目录差异（未写入）：{summary}" if dry_run else f"药品目录已同步（{report.run_id}）：{summary}"
    render(rows, [("change", "变化"), ("code", "药品编码"), ("fields", "变更项")], choose(fmt, as_json), title=title,
           empty="与 HIS 一致，没有变化")


@app.command("status")
def status(
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """处方模式、最近一次目录同步，以及结果未知、等待与 HIS 核对的操作。

    示例：opsctl rx his status --json
    """
    c = container()
    view = rx_his.status(c.uow(), operator(), mode=c.settings.prescription_mode)
    if choose(fmt, as_json) is Format.json:
        emit_json(view)
        return
    render_object({"mode": MODE_LABELS[view.mode], "last_sync_at": view.last_sync_at,
                   "last_sync_status": view.last_sync_status or "", "last_sync": f"新增 {view.last_sync_added}，变更 "
                   f"{view.last_sync_changed}，停用 {view.last_sync_withdrawn}",
                   "last_success_at": view.last_success_at, "drugs_active": view.drugs_active,
                   "pending": view.pending, "failed": view.failed},
                  {"mode": "处方模式", "last_sync_at": "最近同步时间", "last_sync_status": "最近同步结果",
                   "last_sync": "最近同步差异", "last_success_at": "最近成功同步", "drugs_active": "在用药品",
                   "pending": "待核对操作", "failed": "失败操作"}, fmt, title="集成模式状态")
    if view.pending_operations:
        render(list(view.pending_operations), [("operation_id", "操作"), ("prescription_id", "处方"),
                                               ("kind_label", "类型"), ("attempts", "尝试次数"),
                                               ("last_error", "最近错误"), ("updated_at", "更新时间")],
               fmt, title="待与 HIS 核对的操作")
