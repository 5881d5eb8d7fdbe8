"""opsctl serve: the HTTP API."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from opsctl.cli.output import info
from opsctl.cli.state import container, state
from opsctl.config import CONFIG_ENV


def serve(
    host: Annotated[str | None, typer.Option(help="监听地址（默认取配置 http.host）")] = None,
    port: Annotated[int | None, typer.Option(help="监听端口（默认取配置 http.port）")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="工作进程数（建议不超过 CPU 核数；SQLite 下写入仍逐个进行）")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                                             help="逐请求访问日志（默认关闭：每个请求一行日志会明显降低吞吐）")] = False,
) -> None:
    """启动 HTTP 服务：临床 API（/api/v1）、健康检查（/healthz）与 OpenAPI 文档（/docs）。

    示例：opsctl serve --host 0.0.0.0 --port 8700 --workers 2
    """
    import uvicorn

    from opsctl.http.app import create_app

    c = container()
    c.check_schema()  # once, before the first request (and a clear error instead of a failing API)
    bind_host, bind_port = host or c.settings.http.host, port or c.settings.http.port
    info(f"HTTP 服务启动：http://{bind_host}:{bind_port}（{workers} 个工作进程，Ctrl+C 停止）")
    # loop/http "auto": uvloop and httptools (dependencies of opsctl) when importable, else asyncio and h11.
    options = {"host": bind_host, "port": bind_port, "log_level": "warning", "access_log": access_log,
               "loop": "auto", "http": "auto"}
    if workers == 1:
        uvicorn.run(create_app(c.settings, c), **options)  # type: ignore[arg-type]
        return
    # Several processes: each worker builds its own app (and engine) from the same configuration.
    config_path = state().config_path
    if config_path is not None:
        os.environ[CONFIG_ENV] = str(config_path.resolve())
    c.close()
    uvicorn.run("opsctl.http.app:app_from_environment", factory=True, workers=workers, **options)  # type: ignore[arg-type]
