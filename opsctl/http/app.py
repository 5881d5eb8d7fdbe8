"""``create_app(settings)``: the clinical API and the WeChat callback (/wechat/callback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.types import Receive, Scope, Send

from campaigns.api import followup as followup_api
from campaigns.api import push_links, wechat_callback
from clinical_core.api import consultations, nursing, patients, prescriptions, problems, video
from clinical_core.api.fast_path import HotRoutes
from clinical_core.domain.errors import ConfigurationError
from content.api import calendar as calendar_api
from content.api import lectures as lectures_api
from content.scripts import api as scripts_api
from knowledge_base.api import search as kb_api
from opsctl import __version__
from opsctl.config import Settings
from opsctl.wiring import Container


class OpsctlAPI(FastAPI):
    """The FastAPI app with the consultation hot routes answered in front of it (``HotRoutes``).

    A request the fast path takes never enters FastAPI's middleware stack, routing or dependency
    solving; every other request (and every hot-route request that is not the plain, well-formed
    case) is FastAPI's as before. The fast path stands aside while the app has dependency overrides
    or user middleware, which it would otherwise bypass."""

    hot_routes: HotRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_routes
        if hot is not None and scope["type"] == "http" and not self.dependency_overrides \
                and not self.user_middleware:
            handler = hot.handler(scope)
            if handler is not None:
                scope["app"] = self  # as Starlette sets it for every request
                await handler(scope, receive, send, super().__call__)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, container: Container | None = None, *, hot_routes: bool = True) -> FastAPI:
    """The API. ``hot_routes=False`` serves the consultation hot routes through FastAPI too (the
    tests compare both paths)."""
    container = container or Container(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The threadpool that runs sync routes and dependencies (``http.threads``), per event loop.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.http.threads
        try:
            yield
        finally:
            if app.hot_routes is not None:
                app.hot_routes.close()

    app = OpsctlAPI(
        lifespan=lifespan,
        title="opsctl 互联网医院 API",
        version=__version__,
        description="医生、药师、护士与患者应用调用的临床接口。所有接口需 Bearer 令牌（opsctl users token 签发）。",
    )
    app.state.container = container
    app.state.uow_factory = container.uow
    # Ports of the outside world, created on first use.
    for port in ("payments", "attachments", "his", "privacy_numbers", "signer", "geocoder", "his_schedule",
                 "video_rooms"):
        setattr(app.state, port, _Lazy(container, port))

    # Search indexes; the dense model loads on the first query and then stays in memory.
    app.state.kb_index = container.kb_index
    app.state.scripts_index = container.scripts_index
    app.state.search_weights = container.search_weights
    app.state.search_rrf_k = container.settings.search.rrf_k
    problems.install(app)

    @app.get("/healthz", tags=["ops"], summary="健康检查")
    def healthz() -> dict[str, str]:
        with container.engine.connect() as connection:
            connection.execute(text("select 1"))
        return {"status": "ok", "database": container.engine.dialect.name, "version": __version__}

    app.include_router(patients.router)
    app.include_router(consultations.router)
    app.include_router(prescriptions.router)
    app.include_router(nursing.router)
    app.include_router(video.router)
    wx = settings.wechat
    app.include_router(wechat_callback.make_router(wechat_callback.CallbackConfig(
        token=wx.callback_token.get_secret_value(), app_id=wx.app_id,
        encoding_aes_key=wx.encoding_aes_key.get_secret_value() if wx.encoding_aes_key else None)))
    app.include_router(push_links.router)
    app.include_router(kb_api.router)
    app.include_router(scripts_api.router)
    app.include_router(followup_api.router)
    app.include_router(lectures_api.router)
    app.include_router(calendar_api.router)
    if hot_routes:
        sqlite = make_url(settings.effective_database_url).get_backend_name() == "sqlite"
        hot_threads = settings.http.hot_threads or (1 if sqlite else settings.http.threads)
        group_commit = sqlite if settings.http.group_commit is None else settings.http.group_commit
        if group_commit and not sqlite:
            raise ConfigurationError("http.group_commit 仅适用于 SQLite 数据库")
        app.hot_routes = HotRoutes(app, hot_threads, group_commit=group_commit)
    return app


class _Lazy:
    """Resolves a container port on first attribute access (so the app starts without touching them)."""

    def __init__(self, container: Container, name: str) -> None:
        self._container, self._name = container, name

    def __getattr__(self, attribute: str) -> object:
        return getattr(getattr(self._container, self._name), attribute)


def app_from_environment() -> FastAPI:
    """The app of one ``opsctl serve --workers N`` worker: configuration from ``$OPSCTL_CONFIG`` /
    ``./opsctl.toml`` / ``OPSCTL_*`` variables, as the parent process read it."""
    from opsctl.config import load_settings

    container = Container(load_settings())
    container.check_schema()  # once per worker, before its first request
    return create_app(container.settings, container)
