"""Script search and usage over HTTP for the customer-service console."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from clinical_core.api.security import PrincipalDep, UowDep
from content.scripts import services

router = APIRouter(prefix="/api/v1/scripts", tags=["scripts"])


class RenderRequest(BaseModel):
    variables: dict[str, str] = {}
    record: Literal["copied", "sent"] | None = None


class Rendered(BaseModel):
    text: str
    usage_count: int | None = None


@router.get("/search", response_model=list[services.ScriptHit], summary="检索已通过审核的话术")
def search(request: Request, principal: PrincipalDep, uow: UowDep, q: Annotated[str, Query(max_length=500)],
           channel: str | None = None, specialty: str | None = None,
           k: Annotated[int, Query(ge=1, le=50)] = 3) -> list[services.ScriptHit]:
    state = request.app.state
    return services.search(uow, principal, state.scripts_index, q, k=k, channel=channel, specialty=specialty,
                           weights=state.search_weights, rrf_k=state.search_rrf_k)


@router.post("/{script_id}/render", response_model=Rendered, summary="填入变量生成话术，可同时记录使用")
def render(script_id: str, body: RenderRequest, principal: PrincipalDep, uow: UowDep) -> Rendered:
    text = services.render_script(uow, principal, script_id, body.variables)
    count = services.record_use(uow, principal, script_id, body.record) if body.record else None
    return Rendered(text=text, usage_count=count)
