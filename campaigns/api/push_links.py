"""``/l/{code}``: the tracked short link of a push variant. Counts the click (per push, variant and
channel; the recipient when the link carries a valid token) and redirects to the target."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from campaigns.services import links as service

router = APIRouter(tags=["push"])


@router.get("/l/{code}", summary="推送短链跳转（计点击）", response_class=RedirectResponse, status_code=302)
def follow(request: Request, code: str, u: Annotated[str | None, Query(max_length=40)] = None) -> RedirectResponse:
    clicked = service.click(request.app.state.uow_factory(), code[:16], u)
    return RedirectResponse(clicked.target, status_code=302)
