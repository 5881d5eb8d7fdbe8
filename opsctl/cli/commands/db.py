"""opsctl db: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from opsctl import db as schema
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, info, render_object
from opsctl.cli.state import container

app = typer.Typer(help="数据库结构迁移（Alembic）。\n\n示例：opsctl db upgrade", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option(help="目标版本，默认最新")] = "head",
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """把数据库结构升级到最新版本（空库会建好全部表）。

    示例：OPSCTL_DATABASE_URL=postgresql+psycopg://ops@db/ops opsctl db upgrade
    """
    engine = container().engine
    before, after = schema.upgrade(engine, revision)
    info("数据库结构已是最新" if before == after else f"数据库结构已升级：{before or '空'} → {after}")
    render_object({"before": before, "after": after, "dialect": engine.dialect.name},
                  {"before": "升级前", "after": "升级后", "dialect": "数据库"}, choose(fmt, as_json))


@app.command("current")
def current(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """显示数据库当前结构版本与最新版本。

    示例：opsctl db current --json
    """
    engine = container().engine
    now, head = schema.current_revision(engine), schema.head_revision(engine)
    render_object(
        {"current": now, "head": head, "up_to_date": now == head, "dialect": engine.dialect.name,
         "url": engine.url.render_as_string(hide_password=True)},
        {"current": "当前版本", "head": "最新版本", "up_to_date": "已是最新", "dialect": "数据库", "url": "地址"},
        choose(fmt, as_json),
    )
