"""The WeChat client: wechatpy, with the token shared through the database and bounded retries.

- One access token for the whole deployment, in ``wechat_tokens`` (one row per app id). A process
  that finds it missing or within 5 minutes of expiry takes the refresh lease with a conditional
  UPDATE; the others wait for the row. Tokens come from ``/cgi-bin/stable_token`` (normal mode
  returns the same token while it is valid, so even a process that gives up waiting cannot
  invalidate the others' token).
- 40001/40014/42001: the token is marked stale (only if it is still the one that failed), re-read
  or refreshed (force_refresh when WeChat hands back the same bad token), and the call is retried
  exactly once. wechatpy's own retry (unbounded recursion) is switched off.
- -1 and 45011: back-off and retry, a bounded number of times.
- 45009: ``WeChatQuotaError`` with the Chinese meaning. Every other code: ``WeChatApiError``.
- The API base URL is configurable (the sandbox server, a proxy, or api.weixin.qq.com).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from wechatpy import WeChatClient
from wechatpy.exceptions import APILimitedException, WeChatClientException

from campaigns.domain import limits as L
from campaigns.domain.errors import WeChatApiError, WeChatQuotaError
from campaigns.persistence.models import WeChatTokenRow
from clinical_core.persistence.uow import UnitOfWork

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
BACKOFF_ERRORS = frozenset({-1, 45011})
LIVE_BASE_URL = "https://api.weixin.qq.com/cgi-bin/"
LEASE_SECONDS = 30


class _CallError(WeChatApiError, WeChatClientException):
    """A domain error that wechatpy's own handlers (e.g. menu.get on 46003) still recognise."""

    def __init__(self, errcode: int | None, api: str) -> None:  # noqa: super-init-not-called
        probe = WeChatApiError(errcode, api)
        Exception.__init__(self, probe.message)
        self.message, self.hint, self.errcode, self.api = probe.message, probe.hint, errcode, api
        self.errmsg = L.meaning(errcode)


class _QuotaError(WeChatQuotaError, APILimitedException):
    def __init__(self, api: str) -> None:  # noqa: super-init-not-called
        probe = WeChatQuotaError(api)
        Exception.__init__(self, probe.message)
        self.message, self.hint, self.errcode, self.api = probe.message, probe.hint, 45009, api
        self.errmsg = L.meaning(45009)


class SharedTokenStore:
    """The token row: read, lease, save, invalidate. Every decision is one SQL statement."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], app_id: str, owner: str | None = None) -> None:
        self._uow = uow_factory
        self.app_id = app_id
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def _ensure_row(self, uow: UnitOfWork) -> None:
        if uow.session.scalar(select(WeChatTokenRow.id).where(WeChatTokenRow.app_id == self.app_id)) is None:
            try:
                with uow.session.begin_nested():
                    uow.session.add(WeChatTokenRow(app_id=self.app_id, refresh_count=0))
            except IntegrityError:  # another process created it first
                pass

    def current(self, margin_seconds: int = 60) -> str | None:
        """The shared token if it has more than ``margin_seconds`` left."""
        with self._uow() as uow:
            row = uow.session.scalar(select(WeChatTokenRow).where(WeChatTokenRow.app_id == self.app_id))
            if row is None or not row.access_token or row.expires_at is None:
                return None
            if row.expires_at - uow.clock.now() <= timedelta(seconds=margin_seconds):
                return None
            return row.access_token

    def take_lease(self) -> bool:
        """True when this process may refresh: the lease was free or had run out."""
        with self._uow() as uow:
            self._ensure_row(uow)
            now = uow.clock.now()
            result = uow.session.execute(
                update(WeChatTokenRow)
                .where(WeChatTokenRow.app_id == self.app_id,
                       or_(WeChatTokenRow.lease_until.is_(None), WeChatTokenRow.lease_until < now))
                .values(lease_owner=self.owner, lease_until=now + timedelta(seconds=LEASE_SECONDS))
            )
            uow.commit()
            return result.rowcount == 1

    def save(self, token: str, expires_in: int) -> None:
        with self._uow() as uow:
            now = uow.clock.now()
            uow.session.execute(
                update(WeChatTokenRow).where(WeChatTokenRow.app_id == self.app_id).values(
                    access_token=token, expires_at=now + timedelta(seconds=expires_in), refreshed_at=now,
                    refresh_count=WeChatTokenRow.refresh_count + 1, lease_owner=None, lease_until=None)
            )
            uow.commit()

    def release(self) -> None:
        with self._uow() as uow:
            uow.session.execute(update(WeChatTokenRow).where(
                WeChatTokenRow.app_id == self.app_id, WeChatTokenRow.lease_owner == self.owner
            ).values(lease_owner=None, lease_until=None))
            uow.commit()

    def invalidate(self, token: str) -> bool:
        """Mark ``token`` stale, only if it is still the shared one (a newer token is kept)."""
        with self._uow() as uow:
            result = uow.session.execute(
                update(WeChatTokenRow)
                .where(WeChatTokenRow.app_id == self.app_id, WeChatTokenRow.access_token == token)
                .values(expires_at=uow.clock.now())
            )
            uow.commit()
            return result.rowcount == 1


class OpsWeChatClient(WeChatClient):
    """wechatpy's client with a configurable base URL, the shared token and bounded retries."""

    def __init__(self, app_id: str, app_secret: str, store: SharedTokenStore, *, base_url: str = LIVE_BASE_URL,
                 timeout: float = 10.0, backoff: Sequence[float] = (0.5, 1.0, 2.0),
                 sleep: Callable[[float], None] = time.sleep, wait_for_peer: int = 20) -> None:
        super().__init__(app_id, app_secret, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url if base_url.endswith("/") else base_url + "/"
        self.store = store
        self.backoff = tuple(backoff)
        self._sleep = sleep
        self._wait_for_peer = wait_for_peer
        self.calls = 0
        self.token_fetches = 0
        self.token_cache_seconds = 0.0  # >0: trust the shared row this long (push workers: a stable token has ≥300 s left)
        self._cached: tuple[str, float] | None = None

    # -- token -------------------------------------------------------------------------------
    def fetch_access_token(self, force_refresh: bool = False) -> dict[str, Any]:  # type: ignore[override]
        """POST /cgi-bin/stable_token at the configured base URL (wechatpy hard-codes /token)."""
        self.token_fetches += 1
        try:
            res = self._http.post(self.API_BASE_URL + "stable_token", timeout=self.timeout, json={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                "force_refresh": force_refresh})
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError):
            raise WeChatApiError(None, "stable_token") from None
        errcode = int(result.get("errcode") or 0)
        if errcode == 45009:
            raise WeChatQuotaError("stable_token")
        if errcode or "access_token" not in result:
            raise WeChatApiError(errcode or None, "stable_token")
        return result

    def _refresh(self, bad: str | None) -> str:
        if bad is not None:
            self.store.invalidate(bad)
        for _ in range(self._wait_for_peer + 1):
            token = self.store.current(L.TOKEN_REFRESH_MARGIN_SECONDS if bad is None else 60)
            if token and token != bad:
                return token
            if self.store.take_lease():
                try:
                    result = self.fetch_access_token()
                    if bad is not None and result["access_token"] == bad:
                        result = self.fetch_access_token(force_refresh=True)
                except BaseException:
                    self.store.release()
                    raise
                self.store.save(result["access_token"], int(result.get("expires_in", L.TOKEN_LIFETIME_SECONDS)))
                return str(result["access_token"])
            self._sleep(0.1)  # another process is refreshing: read its result
        # The lease holder is stuck: a stable token in normal mode does not invalidate anyone's.
        result = self.fetch_access_token()
        return str(result["access_token"])

    @property
    def access_token(self) -> str:  # type: ignore[override]
        cached = self._cached
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        token = self.store.current(L.TOKEN_REFRESH_MARGIN_SECONDS) or self._refresh(None)
        self._cached = (token, time.monotonic() + self.token_cache_seconds) if self.token_cache_seconds else None
        return token

    # -- calls -------------------------------------------------------------------------------
    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        api = url_or_endpoint.removeprefix(self.API_BASE_URL).split("?")[0]
        token_retried = False
        delays = iter(self.backoff)
        while True:
            attempt = dict(kwargs)
            params = dict(attempt.get("params") or {})
            params.pop("access_token", None)
            token = self.access_token
            params["access_token"] = token
            attempt["params"] = params
            self.calls += 1
            try:
                return super()._request(method, url_or_endpoint, **attempt)
            except APILimitedException:
                raise _QuotaError(api) from None
            except requests.RequestException:
                raise _CallError(None, api) from None
            except WeChatClientException as exc:
                code = exc.errcode
                if code in TOKEN_ERRORS and not token_retried:
                    token_retried = True
                    self._cached = None
                    log.info("wechat token rejected (%s), refreshing once", code)
                    self._refresh(token)
                    continue
                if code in BACKOFF_ERRORS:
                    delay = next(delays, None)
                    if delay is not None:
                        log.info("wechat busy (%s) on %s, retrying in %.1fs", code, api, delay)
                        self._sleep(delay)
                        continue
                raise _CallError(code, api) from None

    def qrcode_image(self, ticket: str) -> bytes:
        """The ticket's PNG (showqrcode needs no token). Live: mp.weixin.qq.com; sandbox: its base URL."""
        base = "https://mp.weixin.qq.com/cgi-bin/" if self.API_BASE_URL == LIVE_BASE_URL else self.API_BASE_URL
        try:
            res = self._http.get(base + "showqrcode", params={"ticket": ticket}, timeout=self.timeout)
            res.raise_for_status()
        except requests.RequestException:
            raise WeChatApiError(None, "showqrcode") from None
        return res.content
