"""opsctl config: the effective configuration."""

from __future__ import annotations

import typer

from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, render
from opsctl.cli.state import state
from opsctl.config import config_file, describe

app = typer.Typer(help="查看配置。\n\n示例：opsctl config show", no_args_is_help=True)


@app.command("show")
def show(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """显示生效的配置（密钥已隐藏）及每项的来源。

    示例：OPSCTL_HTTP__PORT=9000 opsctl config show --json
    """
    settings = state().settings
    path = config_file(state().config_path)
    title = f"生效配置（配置文件：{path or '未使用'}）"
    render(describe(settings), [("key", "配置项"), ("value", "值"), ("source", "来源"), ("env", "环境变量")],
           choose(fmt, as_json), title=title)
