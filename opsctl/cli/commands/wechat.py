"""opsctl wechat: the official account — sandbox server, menus as code, channel QR codes, callback queue."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from campaigns.services import callback as callback_service
from campaigns.services import channels as channel_service
from campaigns.services import menus as menu_service
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, info, render, render_object
from opsctl.cli.state import container, operator

app = typer.Typer(help="公众号运营：沙箱服务器、菜单、渠道二维码、回调队列。\n\n示例：opsctl wechat menu push menu.yaml --dry-run",
                  no_args_is_help=True)
menu_app = typer.Typer(help="自定义菜单即代码：校验、对比、发布、拉取。\n\n示例：opsctl menu validate menu.yaml",
                       no_args_is_help=True)
qr_app = typer.Typer(help="渠道带参数二维码。\n\n示例：opsctl qr create --channel dept-cardio --temporary 30", no_args_is_help=True)
app.add_typer(menu_app, name="menu")
app.add_typer(qr_app, name="qr")

FileArg = Annotated[Path, typer.Argument(help="菜单文件（YAML 或 JSON，结构同微信文档）", exists=True, dir_okay=False)]


def _load(path: Path) -> menu_service.MenuSet:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        typer.echo(f"错误：无法解析菜单文件 {path}：{str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(3) from None
    return menu_service.parse_menu_set(data)


@app.command("sandbox")
def sandbox(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口（0 表示任选空闲端口）")] = 8701,
    callback: Annotated[str | None, typer.Option(help="产品回调地址（默认 http.public_base_url/wechat/callback）")] = None,
) -> None:
    """运行沙箱微信服务器（与真实接口同样的 JSON、错误码与限制），供培训与联调；Ctrl+C 停止。

    示例：opsctl wechat sandbox --port 8701
    """
    from campaigns.adapters.sandbox_server import SandboxServer, SandboxWeChat

    c = container()
    wx = c.settings.wechat
    server = SandboxServer(SandboxWeChat(wx.app_id, wx.app_secret.get_secret_value()), host=host, port=port,
                           callback_url=callback or f"{c.settings.http.public_base_url}/wechat/callback",
                           callback_token=wx.callback_token.get_secret_value(),
                           encoding_aes_key=wx.encoding_aes_key.get_secret_value() if wx.encoding_aes_key else None)
    server.start()
    info(f"沙箱微信服务器：{server.base_url}（设置 OPSCTL_WECHAT__API_BASE_URL={server.base_url} 让 opsctl 使用它）")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@menu_app.command("validate")
def menu_validate(file: FileArg) -> None:
    """按微信的全部限制（数量、UTF-8 字节长度、类型、个性化菜单规则）校验菜单文件，每个问题一行。

    示例：opsctl wechat menu validate menu.yaml
    """
    found = menu_service.validate(_load(file))
    for problem in found:
        typer.echo(str(problem))
    if found:
        raise typer.Exit(3)
    info("菜单符合微信的全部限制")


@menu_app.command("publish")
def menu_publish(
    file: FileArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示与线上菜单的差异，不发布")] = False,
    as_json: JsonOpt = False,
) -> None:
    """校验后与微信上的菜单对比，再发布（默认菜单及个性化菜单整体替换）。

    示例：opsctl menu publish menu.yaml --dry-run
    """
    c = container()
    result = menu_service.publish(c.uow(), operator(), c.wechat, _load(file), dry_run=dry_run)
    if as_json:
        emit_json(result)
        return
    for line in result.changes or ["（与线上菜单一致，无需发布）"]:
        typer.echo(line)
    if result.published:
        info("已发布；微信客户端最迟约 5 分钟后刷新菜单")
    elif dry_run and result.changes:
        info("试运行：未发布")


@menu_app.command("push")
def menu_push(
    file: FileArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示与线上菜单的差异，不发布")] = False,
    as_json: JsonOpt = False,
) -> None:
    """同 menu publish（保留的旧名称）。

    示例：opsctl wechat menu push menu.yaml --dry-run
    """
    menu_publish(file, dry_run=dry_run, as_json=as_json)


@menu_app.command("diff")
def menu_diff(file: FileArg) -> None:
    """显示菜单文件与微信上现有菜单的差异（不发布）。

    示例：opsctl wechat menu diff menu.yaml
    """
    c = container()
    result = menu_service.publish(c.uow(), operator(), c.wechat, _load(file), dry_run=True)
    for line in result.changes or ["（无差异）"]:
        typer.echo(line)


@menu_app.command("pull")
def menu_pull(out: Annotated[Path | None, typer.Option("--out", help="写入文件（YAML）；默认输出到屏幕")] = None) -> None:
    """拉取微信上的现有菜单（可直接再次发布）。

    示例：opsctl wechat menu pull --out menu.yaml
    """
    menus = menu_service.current(container().wechat)
    data: dict[str, Any] = {} if menus is None else {"button": menus.default.get("button", [])}
    if menus and menus.conditional:
        data["conditional"] = menus.conditional
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if out:
        out.write_text(text, encoding="utf-8")
        info(f"已写入 {out}")
    else:
        typer.echo(text)


QR_COLUMNS = [("public_id", "编号"), ("channel", "渠道"), ("scene", "场景值"), ("permanent", "永久"),
              ("expires_at", "到期"), ("url", "二维码内容")]


@qr_app.command("create")
def qr_create(
    channel: Annotated[str, typer.Option("--channel", help="渠道编码")],
    temporary: Annotated[int | None, typer.Option("--temporary", help="临时二维码有效天数（1–30）；不填为永久")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="导出 PNG 与 SVG 图片的目录")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """为渠道生成带参数二维码（场景值编码渠道；永久码配额 100000 个），可导出 PNG/SVG。

    示例：opsctl wechat qr create --channel dept-cardio --temporary 30 --out qr/
    """
    from campaigns.adapters.card_sheet import qr_svg_file

    c = container()
    view = channel_service.create_qr(c.uow(), operator(), c.wechat, channel, temporary)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        stem = view.scene.replace(":", "_")
        (out / f"{stem}.png").write_bytes(c.wechat.qrcode_image(view.ticket))
        qr_svg_file(view.url, out / f"{stem}.svg")
        info(f"图片已导出到 {out}")
    render([view], QR_COLUMNS, choose(fmt, as_json), title="二维码")


@app.command("process")
def process(
    limit: Annotated[int, typer.Option(min=1, max=100000, help="本次最多处理条数")] = 5000,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """处理回调队列中待处理的事件（serve 收到后会自动处理；本命令用于补处理）。

    示例：opsctl wechat process --json
    """
    result = callback_service.process_inbox(container().uow(), limit=limit)
    render_object({"processed": result.processed, "failed": result.failed},
                  {"processed": "已处理", "failed": "失败"}, choose(fmt, as_json), title="回调队列")

