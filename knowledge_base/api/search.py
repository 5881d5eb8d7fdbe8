"""Knowledge-base search over HTTP for the customer-service console (the model stays loaded in ``opsctl serve``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from clinical_core.api.security import PrincipalDep, UowDep
from knowledge_base.services import kb

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge-base"])


@router.get("/search", response_model=list[kb.SearchHit], summary="知识库混合检索")
def search(request: Request, principal: PrincipalDep, uow: UowDep, q: Annotated[str, Query(max_length=500)],
           specialty: str | None = None, k: Annotated[int, Query(ge=1, le=100)] = 5) -> list[kb.SearchHit]:
    state = request.app.state
    return kb.search(uow, principal, state.kb_index, q, k=k, specialty=specialty, weights=state.search_weights,
                     rrf_k=state.search_rrf_k)
