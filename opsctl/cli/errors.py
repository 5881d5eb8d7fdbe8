"""One map from errors to exit codes and one-line Chinese messages.

No traceback unless ``--debug``; even then no local variables (they could
hold patient data).
"""

from __future__ import annotations

import sys
import traceback

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from clinical_core.domain import errors as e

EXIT_CODES: dict[type[e.DomainError], int] = {
    e.InvalidInput: 3,
    e.NotFound: 4,
    e.Conflict: 5,  # IllegalTransition included
    e.RuleViolation: 6,
    e.Unauthenticated: 7,
    e.Forbidden: 7,
    e.ConfigurationError: 8,
    e.ExternalServiceError: 9,
}
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def exit_code_for(error: e.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INTERNAL


def _debug(ctx: typer.Context) -> bool:
    state = ctx.find_root().obj
    return bool(getattr(state, "debug", False))


def _say(message: str) -> None:
    typer.echo(message, err=True)


class OpsctlGroup(TyperGroup):
    """Root group: turns every error raised below it into a message and an exit code."""

    def invoke(self, ctx: typer.Context):  # type: ignore[no-untyped-def, override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except e.DomainError as error:
            if _debug(ctx):
                traceback.print_exc(file=sys.stderr)
            _say(f"错误：{error}")
            raise typer.Exit(exit_code_for(error)) from None
        except KeyboardInterrupt:
            _say("已中断")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:  # noqa: BLE001 - the one place unexpected errors are reported
            if _debug(ctx):
                traceback.print_exc(file=sys.stderr)
                _say(f"内部错误：{type(error).__name__}")
            else:
                _say(f"内部错误：{type(error).__name__}。请加 --debug 重试查看详情，并联系技术支持")
            raise typer.Exit(EXIT_INTERNAL) from None
