"""Errors as ``application/problem+json`` (RFC 9457), in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinical_core.domain import errors as e

PROBLEM = "application/problem+json"

STATUS: dict[type[e.DomainError], int] = {
    e.InvalidInput: 422,
    e.NotFound: 404,
    e.Conflict: 409,
    e.RuleViolation: 422,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.ConfigurationError: 500,
    e.ExternalServiceError: 502,
    e.ServiceUnavailable: 503,
}


def status_for(error: e.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": request.url.path, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def domain_problem(request: Request, error: e.DomainError) -> JSONResponse:
    """The answer to a domain error (also sent by the consultation fast path, ``api.fast_path``)."""
    extra: dict[str, Any] = {"code": type(error).__name__}
    if isinstance(error, e.RuleViolation):
        extra["rule"] = error.rule
    if isinstance(error, e.InvalidInput) and error.field:
        extra["field"] = error.field
    return problem(status_for(error), error.title, str(error), request, **extra)


def unexpected_problem(request: Request) -> JSONResponse:
    """The answer to an unexpected exception: nothing of it reaches the client."""
    return problem(500, "内部错误", "服务器内部错误，请稍后重试或联系技术支持", request)


def install(app: FastAPI) -> None:
    @app.exception_handler(e.DomainError)
    async def _domain(request: Request, error: e.DomainError) -> JSONResponse:
        return domain_problem(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # Never echo the input back: it may be personal data.
        errors = [{"loc": list(x.get("loc", ())), "type": x.get("type")} for x in error.errors()]
        where = "、".join(".".join(str(p) for p in x["loc"]) for x in errors)
        return problem(422, "输入有误", f"请求参数不正确：{where}", request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        titles = {404: "未找到", 405: "方法不允许", 401: "未认证", 403: "无权访问"}
        details = {404: f"没有这个接口：{request.url.path}", 405: f"接口 {request.url.path} 不支持 {request.method} 方法"}
        detail = details.get(error.status_code, str(error.detail))
        return problem(error.status_code, titles.get(error.status_code, "请求错误"), detail, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        return unexpected_problem(request)
