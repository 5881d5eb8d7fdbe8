"""opsctl ca / opsctl staff: the hospital's internal CA and clinicians' signing certificates."""

from __future__ import annotations

from typing import Annotated

import typer

from clinical_core.services import signatures
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, info, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="医院内部 CA（处方电子签名）。\n\n示例：opsctl ca init --organisation 某某大学附属医院",
                  no_args_is_help=True)
staff_app = typer.Typer(help="医务人员的签名证书。\n\n示例：opsctl staff issue-cert stf_0123", no_args_is_help=True)


@app.command("init")
def init(organisation: Annotated[str, typer.Option(help="医院名称（写入 CA 证书）")]) -> None:
    """初始化医院内部 CA（生成 CA 私钥与自签证书，保存在数据目录 ca/ 下，只能初始化一次）。

    示例：opsctl ca init --organisation 某某大学附属医院
    """
    c = container()
    signatures.init_authority(c.uow(), operator(), c.signer, organisation)
    info("已初始化医院 CA")
    typer.echo(str(c.settings.data_dir / "ca" / "ca.crt"))


@staff_app.command("issue-cert")
def issue_cert(
    staff_id: Annotated[str, typer.Argument(help="医生或药师编号（stf_...）")],
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """为医生或药师签发处方签名证书（X.509；旧证书自动作废）。

    示例：opsctl staff issue-cert stf_0123 --json
    """
    c = container()
    view = signatures.issue_certificate(c.uow(), operator(), c.signer, staff_id)
    render([view], [("public_id", "证书编号"), ("staff_id", "员工"), ("name", "姓名"), ("role", "角色"),
                    ("serial", "序列号"), ("not_before", "生效"), ("not_after", "到期")], choose(fmt, as_json),
           title="已签发证书")
