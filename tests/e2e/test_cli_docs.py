"""Every command has help with an example; docs/cli.md matches the help."""

from __future__ import annotations

from pathlib import Path

import typer

from opsctl.cli.docs import command_paths, generate
from opsctl.cli.main import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_every_command_has_help_with_an_example() -> None:
    missing = []
    for path, command in command_paths(typer.main.get_command(app)):
        text = command.help or ""
        if not text.strip() or "示例：" not in text:
            missing.append(" ".join(("opsctl", *path)))
    assert missing == [], f"commands without help or an example (示例：...): {missing}"


def test_docs_cli_md_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == generate(), "docs/cli.md is stale: run `make docs`"
