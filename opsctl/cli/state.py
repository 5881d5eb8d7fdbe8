"""Per-invocation state: global flags, settings and the container, made lazily."""

from __future__ import annotations

import getpass
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import typer

# Typer 0.2x ships its own copy of click; its current-context lookup is the one
# that sees typer's contexts (typer.main itself imports it from here).
from typer._click.globals import get_current_context

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.config import Settings, load_settings
from opsctl.wiring import Container


@dataclass
class CliState:
    debug: bool = False
    config_path: Path | None = None
    _settings: Settings | None = None
    _container: Container | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            logging.basicConfig(
                level=self._settings.log_level, stream=sys.stderr,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            )
            # Libraries that narrate their own progress at INFO (WeasyPrint's layout steps, font
            # subsetting, matplotlib's font cache) would bury the staff's output.
            for noisy in ("weasyprint", "fontTools", "matplotlib", "PIL"):
                logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(self._settings.log_level)))
        return self._settings

    @property
    def container(self) -> Container:
        if self._container is None:
            self._container = Container(self.settings)
        return self._container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


def state() -> CliState:
    ctx: typer.Context = get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
        root.call_on_close(root.obj.close)
    return root.obj


def container() -> Container:
    return state().container


def operator() -> Principal:
    """Who runs opsctl on the server: an administrator, named in the audit log by OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(account_id=f"cli:{user}", username=user, role=Role.ADMIN)
