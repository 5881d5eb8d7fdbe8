"""opsctl refunds: send pending refunds of every kind of order to the payment provider now."""

from __future__ import annotations

from typing import Annotated

import typer

from clinical_core.services import consult_ledger, rx_circulation
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import container

app = typer.Typer(help="退款：立即向支付平台提交待退款记录、查询处理中的退款。\n\n示例：opsctl refunds settle --json",
                  no_args_is_help=True)


@app.command("settle")
def settle(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="每类订单最多处理的退款条数")] = 500,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """立即执行退款任务（与定时任务相同）：提交待退款记录，查询支付平台处理中的退款；失败的留待下次重试。

    咨询订单与处方药费各一行；支付平台拒绝任一退款时退出码 9。

    示例：opsctl refunds settle --json
    """
    c = container()
    consult = consult_ledger.settle_refunds(c.uow(), c.payments, limit=limit)
    rx_ok, rx_failed = rx_circulation.settle_refunds(c.uow(), c.payments, limit=limit)
    rows = [{"kind": "consultation", "label": "咨询订单", "succeeded": consult.succeeded, "failed": consult.failed},
            {"kind": "prescription", "label": "处方药费", "succeeded": rx_ok, "failed": rx_failed}]
    render(rows, [("kind", "类型代码"), ("label", "类型"), ("succeeded", "退款成功"), ("failed", "提交失败")],
           choose(fmt, as_json), title="退款任务")
    if consult.failed or rx_failed:
        raise typer.Exit(9)
