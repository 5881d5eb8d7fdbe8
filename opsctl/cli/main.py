"""Entry point of ``opsctl``: global flags and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsctl import __version__
from opsctl.cli.commands import (
    audit, ca, cards, channels, config, consult, content, db, demo, followup, funnel, jobs, kb, lecture, live,
    nursing, org, patients, push, questionnaire, refunds, report, rx, scripts, serve, users, video, wechat,
)
from opsctl.cli.commands import schedule, visit
from opsctl.cli.errors import OpsctlGroup
from opsctl.cli.state import state

app = typer.Typer(
    cls=OpsctlGroup,
    name="opsctl",
    help="互联网医院运营工具箱：临床核心、公众号运营、内容、知识库、报表与定时任务。\n\n示例：opsctl demo run",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opsctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="出错时显示调用栈（不含变量值）")] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="配置文件路径（默认 ./opsctl.toml 或 $OPSCTL_CONFIG）")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="显示版本号并退出")
    ] = False,
) -> None:
    """互联网医院运营工具箱。

    示例：opsctl --config /etc/opsctl/opsctl.toml db current
    """
    current = state()
    current.debug = debug
    current.config_path = config_file


app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(users.app, name="users")
app.add_typer(patients.app, name="patients")
app.add_typer(org.app, name="org")
app.add_typer(audit.app, name="audit")
app.add_typer(consult.app, name="consult")
app.add_typer(rx.app, name="rx")
app.add_typer(nursing.app, name="nursing")
app.add_typer(refunds.app, name="refunds")
app.add_typer(ca.app, name="ca")
app.add_typer(ca.staff_app, name="staff")
app.add_typer(wechat.app, name="wechat")
app.add_typer(wechat.menu_app, name="menu")
app.add_typer(wechat.qr_app, name="qr")
app.add_typer(channels.app, name="channels")
app.add_typer(cards.app, name="cards")
app.add_typer(funnel.app, name="funnel")
app.add_typer(push.app, name="push")
app.add_typer(video.app, name="video")
app.add_typer(schedule.app, name="schedule")
app.add_typer(visit.app, name="visit")
app.add_typer(lecture.app, name="lecture")
app.add_typer(content.app, name="content")
app.add_typer(live.app, name="live")
app.add_typer(live.community_app, name="community")
app.add_typer(kb.app, name="kb")
app.add_typer(scripts.app, name="scripts")
app.add_typer(jobs.app, name="jobs")
app.add_typer(followup.app, name="followup")
app.add_typer(questionnaire.app, name="questionnaire")
app.add_typer(report.app, name="report")
app.command("serve")(serve.serve)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="opsctl")
