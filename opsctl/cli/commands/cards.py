"""opsctl cards: package-card batches (包裹卡) and their print-ready sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from campaigns.adapters.card_sheet import Card, write_pdf
from campaigns.services import channels as service
from clinical_core.persistence.models import HospitalRow
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, info, render
from opsctl.cli.progress import progress
from opsctl.cli.state import container, operator

app = typer.Typer(help="包裹卡：每批卡片每张一个二维码场景值，生成可打印的 A4 PDF。\n\n示例：opsctl cards batch create --batch pc-202611 --size 40 --copy 扫码关注，复诊续方送药到家",
                  no_args_is_help=True)
batch_app = typer.Typer(help="包裹卡批次：新建、关联处方。\n\n示例：opsctl cards batch create --batch pc-202611 --size 40 --copy 扫码关注，复诊续方送药到家",
                        no_args_is_help=True)
app.add_typer(batch_app, name="batch")
COLUMNS = [("scene", "场景值"), ("url", "二维码内容"), ("public_id", "编号")]


@batch_app.command("create")
def batch_create(
    batch: Annotated[str, typer.Option("--batch", help="批次编码（即渠道编码）")],
    size: Annotated[int, typer.Option("--size", min=1, max=5000, help="卡片张数")],
    copy: Annotated[str, typer.Option("--copy", help="印在卡片上的文案（不得宣传处方药）")],
    name: Annotated[str | None, typer.Option(help="批次名称")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """新建一批包裹卡：每张卡一个永久二维码（计入 100000 配额），文案经处方药检查。

    示例：opsctl cards batch create --batch pc-202611 --size 40 --copy 扫码关注，复诊续方送药到家
    """
    c = container()
    with progress("生成包裹卡二维码", total=None):
        view = service.create_card_batch(c.uow(), operator(), c.wechat, batch, size, copy, name)
    render(view.cards, COLUMNS, choose(fmt, as_json), title=f"包裹卡批次 {view.code}（{view.size} 张）")


LINK_COLUMNS = [("batch", "批次"), ("prescription", "处方"), ("linked_at", "关联时间"), ("parcels", "该批次包裹数")]


@batch_app.command("link")
def batch_link(
    batch: Annotated[str, typer.Argument(help="批次编码")],
    prescriptions: Annotated[list[str], typer.Option("--prescription", help="处方编号 rx_...（可重复）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """把包裹卡批次关联到随包裹寄出它的处方（审方通过的处方；一个包裹只能关联一个批次），漏斗据此统计每批的包裹数。

    示例：opsctl cards batch link pc-202611 --prescription rx_01J... --prescription rx_01K...
    """
    c = container()
    views = [service.link_prescription(c.uow(), operator(), batch, rx) for rx in prescriptions]
    render(views, LINK_COLUMNS, choose(fmt, as_json), title=f"包裹卡批次 {batch} 已关联处方")


@app.command("create")
def create(
    batch: Annotated[str, typer.Option("--batch", help="批次编码（即渠道编码）")],
    size: Annotated[int, typer.Option("--size", min=1, max=5000, help="卡片张数")],
    copy: Annotated[str, typer.Option("--copy", help="印在卡片上的文案（不得宣传处方药）")],
    name: Annotated[str | None, typer.Option(help="批次名称")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """同 cards batch create（保留的旧名称）。

    示例：opsctl cards create --batch pc-202611 --size 40 --copy 扫码关注
    """
    batch_create(batch, size, copy, name, fmt=fmt, as_json=as_json)


@app.command("print")
def print_(
    batch: Annotated[str, typer.Argument(help="批次编码")],
    out: Annotated[Path, typer.Option("--out", help="输出 PDF 文件")] = Path("cards.pdf"),
) -> None:
    """把一批包裹卡排成 A4 打印稿（PDF，每页 8 张，每张含二维码与医院文案）。

    示例：opsctl cards print pc-202611 --out pc-202611.pdf
    """
    c = container()
    view = service.get_card_batch(c.uow(), operator(), batch)
    with c.uow() as uow:
        hospital = uow.session.scalar(select(HospitalRow.name).limit(1)) or "互联网医院"
    pages = write_pdf(out, hospital, view.code, view.copy_text, [Card(q.scene, q.url) for q in view.cards])
    info(f"已生成 {out}：{len(view.cards)} 张卡片，{pages} 页")
