"""opsctl serve: the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from opsctl.cli.output import info
from opsctl.cli.state import container


def serve(
    host: Annotated[str | None, typer.Option(help="监听地址（默认取配置 http.host）")] = None,
    port: Annotated[int | None, typer.Option(help="监听端口（默认取配置 http.port）")] = None,
) -> None:
    """启动 HTTP 服务：临床 API（/api/v1）、健康检查（/healthz）与 OpenAPI 文档（/docs）。

    示例：opsctl serve --host 0.0.0.0 --port 8700
    """
    import uvicorn

    from opsctl.http.app import create_app

    c = container()
    app = create_app(c.settings, c)
    bind_host, bind_port = host or c.settings.http.host, port or c.settings.http.port
    info(f"HTTP 服务启动：http://{bind_host}:{bind_port}（Ctrl+C 停止）")
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False)
