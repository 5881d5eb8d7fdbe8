"""Sandbox WeChat server: answers as api.weixin.qq.com does, for the demo, the tests and staff
training (``opsctl wechat sandbox``).

It speaks WeChat's JSON shapes and error codes and enforces the real limits
(shared/research/wechat.md §1): token and stable token (5-minute overlap, force-refresh quota),
menus (counts and UTF-8 byte lengths, conditional menus need the default one, privacy match
fields refused), QR codes (30-day temporary codes, 100,000 permanent codes, ticket → PNG),
tags (100 per account, 30-byte names, 50 openids per batch, 20 tags per user), user info,
template messages (fields over 20 characters truncated silently, as WeChat does; 100,000 a day;
``client_msg_id`` sends once per openid within 10 minutes; the template list), mass send by
tag and by openid list (2..10,000 openids; each user receives at most 4 per natural month;
a repeated ``clientmsgid`` answers 45065 with the existing job's msg_id),
preview, and 客服 messages (3 within a minute of a follow or scan, 45015 outside the window).

It calls the product's callback with the events WeChat would send (subscribe with
``qrscene_``, SCAN, unsubscribe, TEMPLATESENDJOBFINISH, MASSSENDJOBFINISH), signed like WeChat
and, when an EncodingAESKey is set, encrypted in safe mode; a callback that does not answer 200
is retried, three attempts in total. Faults can be injected (error codes, latency, a share of
failures) and every request is recorded.

State lives in memory: one server is one WeChat account for as long as it runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import segno

from campaigns.domain import limits as L
from campaigns.domain.menu import problems as menu_problems

Deliver = Callable[[str, bytes], int]  # (url with query, body) -> HTTP status


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Fault:
    path: str  # substring of the request path, "*" for any API call
    errcode: int
    remaining: int


@dataclass
class SandboxFollower:
    openid: str
    subscribed: bool = True
    subscribe_time: int = 0
    scene: str = ""
    tags: list[int] = field(default_factory=list)
    window_start: float = 0.0  # epoch seconds of the last follow/scan (客服 window)
    window_sent: int = 0


def _err(code: int, msg: str | None = None) -> dict[str, Any]:
    return {"errcode": code, "errmsg": msg or L.meaning(code)}


class SandboxWeChat:
    """The account's state and the API behaviour, independent of HTTP."""

    def __init__(self, app_id: str, app_secret: str, *, now: Callable[[], datetime] | None = None,
                 seed: int = 0) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self._now = now or (lambda: datetime.now(UTC))
        self._rng = random.Random(seed)
        self.lock = threading.RLock()
        self.received: list[Received] = []
        self.faults: list[Fault] = []
        self.latency_seconds = 0.0
        self.failure_share = 0.0
        # tokens: token -> expiry epoch; stable tokens are isolated from /token tokens
        self.tokens: dict[str, float] = {}
        self.current_token: str | None = None
        self.stable_token: str | None = None
        self.stable_expires = 0.0
        self.force_refreshes: list[float] = []
        self.token_calls = 0
        self.menu: dict[str, Any] | None = None
        self.conditional: dict[str, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.permanent_scenes: set[str] = set()
        self.tags: dict[int, str] = {}
        self.next_tag = 100
        self.followers: dict[str, SandboxFollower] = {}
        self.templates: dict[str, dict[str, str]] = {
            "tpl_sandbox_notice": {"title": "就诊提醒", "content": "{{first.DATA}}\n就诊人：{{keyword1.DATA}}\n"
                                   "就诊时间：{{keyword2.DATA}}\n就诊科室：{{keyword3.DATA}}\n{{remark.DATA}}"},
            "tpl_sandbox_followup": {"title": "随访提醒", "content": "{{first.DATA}}\n随访医生：{{keyword1.DATA}}\n"
                                     "随访内容：{{keyword2.DATA}}\n{{remark.DATA}}"},
            "tpl_sandbox_live": {"title": "直播预告", "content": "{{first.DATA}}\n直播主题：{{keyword1.DATA}}\n"
                                 "直播时间：{{keyword2.DATA}}\n直播平台：{{keyword3.DATA}}\n{{remark.DATA}}"},
        }
        self.template_sent: list[dict[str, Any]] = []
        self.template_day: dict[str, int] = {}  # YYYY-MM-DD -> template messages sent (100,000 a day)
        self.template_dedupe: dict[tuple[str, str], tuple[int, float]] = {}  # (openid, client_msg_id) -> (msgid, at)
        self.mass_clientmsgids: dict[str, int] = {}
        self.mass_sent: list[dict[str, Any]] = []
        self.mass_month: dict[tuple[str, str], int] = {}
        self.custom_sent: list[dict[str, Any]] = []
        self.previews: list[dict[str, Any]] = []
        self.next_msg_id = 1000
        self.pending_events: list[str] = []  # XML bodies WeChat will push to the callback
        self.callback_log: list[tuple[str, int]] = []  # (event xml, final status)

    # -- clock -------------------------------------------------------------------------------
    def epoch(self) -> float:
        return self._now().timestamp()

    def month(self) -> str:
        return self._now().astimezone(UTC).strftime("%Y-%m")  # natural month (UTC+8 in reality)

    # -- faults ------------------------------------------------------------------------------
    def inject(self, errcode: int, *, path: str = "*", times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(path, errcode, times))

    def _fault_for(self, path: str) -> dict[str, Any] | None:
        for fault in self.faults:
            token_path = path.endswith(("/token", "/stable_token"))
            if fault.remaining > 0 and ((fault.path == "*" and not token_path) or (fault.path != "*" and fault.path in path)):
                fault.remaining -= 1
                return _err(fault.errcode)
        if self.failure_share and self._rng.random() < self.failure_share:
            return _err(-1)
        return None

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, str, bytes]:
        with self.lock:
            self.received.append(Received(method, path, dict(query), body))
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if path == "/cgi-bin/showqrcode":
            return self._show_qrcode(query)
        with self.lock:
            route = path.removeprefix("/cgi-bin/")
            fault = self._fault_for(path)
            if fault is not None:
                result = fault
            elif route == "token":
                result = self._token(query)
            elif route == "stable_token":
                result = self._stable_token(body)
            else:
                handler = _ROUTES.get((method, route))
                if handler is None:
                    return 404, "text/plain", b"not found"
                token_error = self._check_token(query.get("access_token"))
                if token_error:
                    result = token_error
                elif body is _BAD_JSON:
                    result = _err(47001)
                else:
                    result = handler(self, query, body if isinstance(body, dict) else {})
        return 200, "application/json; charset=utf-8", json.dumps(result, ensure_ascii=False).encode()

    # -- tokens ------------------------------------------------------------------------------
    def _credentials_ok(self, appid: Any, secret: Any) -> dict[str, Any] | None:
        if appid != self.app_id:
            return _err(40013)
        if secret != self.app_secret:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        return None

    def _new_token(self) -> str:
        return secrets.token_urlsafe(96)[:128]

    def _token(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        bad = self._credentials_ok(query.get("appid"), query.get("secret"))
        if bad:
            return bad
        now = self.epoch()
        self.token_calls += 1
        if self.current_token:  # the old one keeps working for 5 minutes
            self.tokens[self.current_token] = min(self.tokens[self.current_token], now + 300)
        token = self._new_token()
        self.tokens[token] = now + L.TOKEN_LIFETIME_SECONDS
        self.current_token = token
        return {"access_token": token, "expires_in": L.TOKEN_LIFETIME_SECONDS}

    def _stable_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        bad = self._credentials_ok(body.get("appid"), body.get("secret"))
        if bad:
            return bad
        now = self.epoch()
        self.token_calls += 1
        force = bool(body.get("force_refresh"))
        if force:
            day = [t for t in self.force_refreshes if now - t < 86400]
            if len(day) >= L.STABLE_FORCE_REFRESH_PER_DAY:
                return _err(45009, "reach max api daily quota limit")
            if day and now - day[-1] < L.STABLE_FORCE_REFRESH_MIN_GAP_SECONDS:
                return _err(45011, "api minute-quota reach limit, must slower, retry next minute")
            self.force_refreshes = [*day, now]
            if self.stable_token:
                self.tokens.pop(self.stable_token, None)
            self.stable_token = None
        if self.stable_token and self.stable_expires - now > L.TOKEN_REFRESH_MARGIN_SECONDS:
            return {"access_token": self.stable_token, "expires_in": int(self.stable_expires - now)}
        if self.stable_token:  # renewed 5 minutes before expiry; the old one runs out on its own
            self.tokens[self.stable_token] = self.stable_expires
        self.stable_token = self._new_token()
        self.stable_expires = now + L.TOKEN_LIFETIME_SECONDS
        self.tokens[self.stable_token] = self.stable_expires
        return {"access_token": self.stable_token, "expires_in": L.TOKEN_LIFETIME_SECONDS}

    def _check_token(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return _err(41001)
        expiry = self.tokens.get(token)
        if expiry is None:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if expiry <= self.epoch():
            return _err(42001)
        return None

    def expire_all_tokens(self) -> None:
        """Fault helper: every issued token is invalid from now on (as after a secret reset)."""
        with self.lock:
            self.tokens.clear()
            self.stable_token = self.current_token = None

    # -- menus -------------------------------------------------------------------------------
    def _menu_create(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        found = menu_problems({"button": body.get("button")})
        if found:
            return _err(found[0].errcode, f"{found[0]} hint: sandbox")
        self.menu = {"button": body["button"]}
        self.conditional.clear()
        return _err(0, "ok")

    def _menu_get(self, _q: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        if self.menu is None:
            return _err(46003, "menu no exist")
        result: dict[str, Any] = {"menu": dict(self.menu)}
        if self.conditional:
            result["conditionalmenu"] = [dict(m, menuid=int(k)) for k, m in self.conditional.items()]
        return result

    def _menu_delete(self, _q: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        self.menu = None
        self.conditional.clear()  # deleting the default menu deletes every conditional one
        return _err(0, "ok")

    def _menu_addconditional(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if self.menu is None:
            return _err(65303)
        if "matchrule" not in body:
            return _err(65304)
        found = menu_problems({"button": body.get("button"), "matchrule": body.get("matchrule")})
        if found:
            return _err(found[0].errcode, f"{found[0]} hint: sandbox")
        menuid = str(400000000 + len(self.conditional) + 1 + self.next_msg_id)
        self.next_msg_id += 1
        self.conditional[menuid] = {"button": body["button"], "matchrule": body["matchrule"]}
        return {"menuid": menuid}

    def _menu_delconditional(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if self.conditional.pop(str(body.get("menuid")), None) is None:
            return _err(65301)
        return _err(0, "ok")

    # -- QR codes ----------------------------------------------------------------------------
    def _qrcode_create(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        action = body.get("action_name")
        scene = ((body.get("action_info") or {}).get("scene") or {})
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            return _err(40053)
        permanent = action.startswith("QR_LIMIT")
        if action.endswith("STR_SCENE"):
            value = scene.get("scene_str")
            if not isinstance(value, str) or not 1 <= len(value) <= L.QR_SCENE_STR_MAX:
                return _err(40053)
        else:
            value = scene.get("scene_id")
            upper = L.QR_SCENE_ID_PERMANENT_MAX if permanent else 2**32 - 1
            if not isinstance(value, int) or not 1 <= value <= upper:
                return _err(40053)  # a missing scene wrapper would give qrscene_0 in real WeChat
        result: dict[str, Any]
        if permanent:
            key = str(value)
            if key not in self.permanent_scenes and len(self.permanent_scenes) >= L.QR_PERMANENT_MAX:
                # WeChat's exact code for an exhausted permanent quota is undocumented (research §1.4)
                return _err(45163)
            self.permanent_scenes.add(key)
            expires = None
        else:
            seconds = body.get("expire_seconds", L.QR_TEMPORARY_DEFAULT_SECONDS)
            if not isinstance(seconds, int) or seconds < 1:
                return _err(40053)
            seconds = min(seconds, L.QR_TEMPORARY_MAX_SECONDS)  # WeChat caps at 30 days
            expires = self.epoch() + seconds
        ticket = "gQ" + hashlib.sha256(f"{action}:{value}:{self.next_msg_id}".encode()).hexdigest()[:40]
        self.next_msg_id += 1
        url = f"http://weixin.qq.com/q/{ticket[:28]}"
        self.tickets[ticket] = {"scene": str(value), "expires": expires, "url": url}
        result = {"ticket": ticket, "url": url}
        if expires is not None:
            result["expire_seconds"] = int(expires - self.epoch())
        return result

    def _show_qrcode(self, query: dict[str, str]) -> tuple[int, str, bytes]:
        with self.lock:
            info = self.tickets.get(query.get("ticket", ""))
            if info is None or (info["expires"] is not None and info["expires"] <= self.epoch()):
                return 404, "text/plain", b"invalid ticket"
        buffer = BytesIO()
        segno.make(info["url"], error="m").save(buffer, kind="png", scale=6, border=2)
        return 200, "image/png", buffer.getvalue()

    def scene_of_ticket(self, ticket: str) -> str | None:
        info = self.tickets.get(ticket)
        return None if info is None else info["scene"]

    # -- tags and users ----------------------------------------------------------------------
    def _tags_create(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        name = str((body.get("tag") or {}).get("name") or "")
        if len(self.tags) >= L.TAGS_MAX:
            return _err(45056)
        if L.utf8_len(name) > L.TAG_NAME_BYTES:
            return _err(45158)
        if not name or name in self.tags.values():
            return _err(45157)
        tag_id = self.next_tag
        self.next_tag += 1
        self.tags[tag_id] = name
        return {"tag": {"id": tag_id, "name": name}}

    def _tags_get(self, _q: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        counts = {t: sum(t in f.tags for f in self.followers.values()) for t in self.tags}
        return {"tags": [{"id": t, "name": n, "count": counts[t]} for t, n in self.tags.items()]}

    def _batchtagging(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        openids, tag_id = body.get("openid_list") or [], body.get("tagid")
        if not openids or len(openids) > L.TAG_BATCH_MAX:
            return _err(40032)
        if tag_id not in self.tags:
            return _err(45159)
        for openid in openids:
            if openid not in self.followers:
                return _err(40003)
            follower = self.followers[openid]
            if tag_id not in follower.tags:
                if len(follower.tags) >= L.TAGS_PER_USER_MAX:
                    return _err(45059)
                follower.tags.append(tag_id)
        return _err(0, "ok")

    def _tag_users(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        openids = [o for o, f in self.followers.items() if body.get("tagid") in f.tags and f.subscribed]
        return {"count": len(openids), "data": {"openid": openids}, "next_openid": ""}

    def _user_info(self, query: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        follower = self.followers.get(query.get("openid", ""))
        if follower is None:
            return _err(40003)
        if not follower.subscribed:
            return {"subscribe": 0, "openid": follower.openid}
        return {"subscribe": 1, "openid": follower.openid, "language": "zh_CN",
                "subscribe_time": follower.subscribe_time, "unionid": "", "remark": "", "groupid": 0,
                "tagid_list": list(follower.tags),
                "subscribe_scene": "ADD_SCENE_QR_CODE" if follower.scene else "ADD_SCENE_SEARCH",
                "qr_scene": 0, "qr_scene_str": follower.scene}

    # -- messages ----------------------------------------------------------------------------
    def _msg_id(self) -> int:
        self.next_msg_id += 1
        return self.next_msg_id

    def _template_list(self, _q: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        return {"template_list": [
            {"template_id": key, "title": t["title"], "primary_industry": "医药护理", "deputy_industry": "医药医疗",
             "content": t["content"], "example": ""} for key, t in self.templates.items()]}

    def _template_send(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        follower = self.followers.get(str(body.get("touser")))
        if body.get("template_id") not in self.templates:
            return _err(40037)
        if follower is None or not follower.subscribed:
            return _err(43004)
        client_msg_id = body.get("client_msg_id")
        if client_msg_id:  # one message per (openid, client_msg_id) within 10 minutes
            seen = self.template_dedupe.get((follower.openid, str(client_msg_id)))
            if seen is not None and self.epoch() - seen[1] < L.TEMPLATE_DEDUPE_SECONDS:
                return {"errcode": 0, "errmsg": "ok", "msgid": seen[0]}
        day = self._now().astimezone(UTC).strftime("%Y-%m-%d")
        if self.template_day.get(day, 0) >= L.TEMPLATE_PER_DAY:
            return _err(45009, "reach max api daily quota limit")
        self.template_day[day] = self.template_day.get(day, 0) + 1
        shown = {k: {"value": str((v or {}).get("value", ""))[: L.TEMPLATE_FIELD_CHARS].replace("\n", "")}
                 for k, v in (body.get("data") or {}).items()}  # WeChat truncates silently
        msg_id = self._msg_id()
        if client_msg_id:
            self.template_dedupe[(follower.openid, str(client_msg_id))] = (msg_id, self.epoch())
        self.template_sent.append({"msgid": msg_id, "touser": follower.openid, "data": shown,
                                   "template_id": body.get("template_id"), "url": body.get("url"),
                                   "client_msg_id": client_msg_id, "at": time.monotonic()})
        self._queue_event(follower.openid, "TEMPLATESENDJOBFINISH", {"MsgID": str(msg_id), "Status": "success"})
        return {"errcode": 0, "errmsg": "ok", "msgid": msg_id}

    def _mass(self, targets: list[str], body: dict[str, Any], how: str) -> dict[str, Any]:
        if body.get("msgtype") not in ("text", "mpnews", "image", "voice", "mpvideo", "wxcard"):
            return _err(40008, "invalid message type")
        clientmsgid = body.get("clientmsgid")
        if clientmsgid and clientmsgid in self.mass_clientmsgids:  # the same job already exists
            return {"errcode": 45065, "errmsg": L.meaning(45065), "msg_id": self.mass_clientmsgids[clientmsgid]}
        month = self.month()
        sent, filtered = [], 0
        for openid in targets:
            follower = self.followers.get(openid)
            if follower is None or not follower.subscribed:
                filtered += 1
                continue
            used = self.mass_month.get((openid, month), 0)
            if used >= L.MASS_PER_USER_PER_MONTH:
                filtered += 1
                continue
            self.mass_month[(openid, month)] = used + 1
            sent.append(openid)
        msg_id = self._msg_id()
        if clientmsgid:
            self.mass_clientmsgids[clientmsgid] = msg_id
        self.mass_sent.append({"msg_id": msg_id, "how": how, "sent": sent, "filtered": filtered,
                               "msgtype": body.get("msgtype"), "clientmsgid": body.get("clientmsgid")})
        self._queue_event(self.app_id, "MASSSENDJOBFINISH", {
            "MsgID": str(msg_id), "Status": "send success" if sent else "send fail",
            "TotalCount": str(len(targets)), "FilterCount": str(len(targets) - filtered),
            "SentCount": str(len(sent)), "ErrorCount": "0"})
        return {"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id, "msg_data_id": msg_id}

    def _mass_send(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        openids = body.get("touser")
        if not isinstance(openids, list) or not L.MASS_OPENIDS_MIN <= len(set(openids)) <= L.MASS_OPENIDS_MAX:
            return _err(40130)
        return self._mass(list(dict.fromkeys(openids)), body, "openid")

    def _mass_sendall(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        flt = body.get("filter") or {}
        if flt.get("is_to_all"):
            targets = [o for o, f in self.followers.items() if f.subscribed]
        else:
            if flt.get("tag_id") not in self.tags:
                return _err(40050, "invalid tag id")
            targets = [o for o, f in self.followers.items() if flt["tag_id"] in f.tags and f.subscribed]
        return self._mass(targets, body, "tag")

    def _mass_preview(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        follower = self.followers.get(str(body.get("touser")))
        if follower is None or not follower.subscribed:
            return _err(43004)
        msg_id = self._msg_id()
        self.previews.append({"msg_id": msg_id, "touser": follower.openid, "msgtype": body.get("msgtype")})
        return {"errcode": 0, "errmsg": "preview success", "msg_id": msg_id}

    def _custom_send(self, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        follower = self.followers.get(str(body.get("touser")))
        if follower is None or not follower.subscribed:
            return _err(45015)
        if self.epoch() - follower.window_start > 60:
            return _err(45015)
        if follower.window_sent >= 3:
            return _err(45047)
        follower.window_sent += 1
        self.custom_sent.append({"touser": follower.openid, "msgtype": body.get("msgtype"), "body": body})
        return _err(0, "ok")

    # -- user actions that WeChat pushes to the callback -------------------------------------
    def _queue_event(self, from_user: str, event: str, extra: dict[str, str]) -> None:
        created = str(int(self.epoch()))
        parts = [f"<ToUserName><![CDATA[gh_sandbox]]></ToUserName>",
                 f"<FromUserName><![CDATA[{from_user}]]></FromUserName>",
                 f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>",
                 f"<Event><![CDATA[{event}]]></Event>"]
        parts += [f"<{k}><![CDATA[{v}]]></{k}>" for k, v in extra.items()]
        self.pending_events.append("<xml>" + "".join(parts) + "</xml>")

    def user_follows(self, openid: str, *, scene: str | None = None) -> None:
        """A user follows, by a channel QR code (``scene``) or from search."""
        with self.lock:
            follower = self.followers.setdefault(openid, SandboxFollower(openid))
            follower.subscribed, follower.subscribe_time = True, int(self.epoch())
            follower.scene = scene or ""
            follower.window_start, follower.window_sent = self.epoch(), 0
            extra = {"EventKey": f"qrscene_{scene}", "Ticket": self._ticket_for(scene)} if scene else {"EventKey": ""}
            self._queue_event(openid, "subscribe", extra)

    def user_scans(self, openid: str, scene: str) -> None:
        """A follower scans a channel QR code again."""
        with self.lock:
            follower = self.followers.setdefault(openid, SandboxFollower(openid, subscribe_time=int(self.epoch())))
            if not follower.subscribed:
                raise ValueError("an unsubscribed user scanning follows instead: use user_follows")
            follower.window_start, follower.window_sent = self.epoch(), 0
            self._queue_event(openid, "SCAN", {"EventKey": scene, "Ticket": self._ticket_for(scene)})

    def user_unfollows(self, openid: str) -> None:
        with self.lock:
            follower = self.followers.get(openid)
            if follower is not None:
                follower.subscribed = False
                follower.tags.clear()
            self._queue_event(openid, "unsubscribe", {"EventKey": ""})

    def _ticket_for(self, scene: str) -> str:
        for ticket, info in self.tickets.items():
            if info["scene"] == scene:
                return ticket
        return ""


_BAD_JSON = object()

_ROUTES: dict[tuple[str, str], Callable[[SandboxWeChat, dict[str, str], dict[str, Any]], dict[str, Any]]] = {
    ("POST", "menu/create"): SandboxWeChat._menu_create,
    ("GET", "menu/get"): SandboxWeChat._menu_get,
    ("GET", "get_current_selfmenu_info"): SandboxWeChat._menu_get,
    ("GET", "menu/delete"): SandboxWeChat._menu_delete,
    ("POST", "menu/addconditional"): SandboxWeChat._menu_addconditional,
    ("POST", "menu/delconditional"): SandboxWeChat._menu_delconditional,
    ("POST", "qrcode/create"): SandboxWeChat._qrcode_create,
    ("POST", "tags/create"): SandboxWeChat._tags_create,
    ("GET", "tags/get"): SandboxWeChat._tags_get,
    ("POST", "tags/members/batchtagging"): SandboxWeChat._batchtagging,
    ("POST", "user/tag/get"): SandboxWeChat._tag_users,
    ("GET", "user/info"): SandboxWeChat._user_info,
    ("POST", "message/template/send"): SandboxWeChat._template_send,
    ("GET", "template/get_all_private_template"): SandboxWeChat._template_list,
    ("POST", "message/mass/send"): SandboxWeChat._mass_send,
    ("POST", "message/mass/sendall"): SandboxWeChat._mass_sendall,
    ("POST", "message/mass/preview"): SandboxWeChat._mass_preview,
    ("POST", "message/custom/send"): SandboxWeChat._custom_send,
}


class SandboxServer:
    """The sandbox on a real socket (127.0.0.1, a free port unless given), in a daemon thread."""

    def __init__(self, wechat: SandboxWeChat, *, host: str = "127.0.0.1", port: int = 0,
                 callback_url: str | None = None, callback_token: str = "", encoding_aes_key: str | None = None,
                 deliver: Deliver | None = None) -> None:
        self.wechat = wechat
        self.callback_url = callback_url
        self.callback_token = callback_token
        self.encoding_aes_key = encoding_aes_key
        self._deliver = deliver
        handler = _make_handler(wechat)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/cgi-bin/"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wechat-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pushing events to the product's callback --------------------------------------------
    def signed_request(self, xml: str, *, timestamp: int | None = None, nonce: str | None = None) -> tuple[str, bytes]:
        """The URL (with WeChat's query string) and body WeChat would POST for ``xml``."""
        ts = str(timestamp if timestamp is not None else int(self.wechat.epoch()))
        nonce = nonce or str(self.wechat._rng.randrange(10**9, 10**10))
        query = {"timestamp": ts, "nonce": nonce,
                 "signature": _sha1(self.callback_token, ts, nonce), "openid": _tag(xml, "FromUserName")}
        body = xml.encode()
        if self.encoding_aes_key:
            from wechatpy.crypto import WeChatCrypto

            crypto = WeChatCrypto(self.callback_token, self.encoding_aes_key, self.wechat.app_id)
            encrypted = crypto.encrypt_message(xml, nonce, ts)
            encrypt = _tag(encrypted, "Encrypt")
            body = f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
            query.update(encrypt_type="aes", msg_signature=_sha1(self.callback_token, ts, nonce, encrypt))
        url = f"{self.callback_url or ''}?{urlencode(query)}"
        return url, body

    def deliver(self, xml: str) -> int:
        """POST one event like WeChat: three attempts in total unless the callback answers 200."""
        status = 0
        for _attempt in range(3):
            url, body = self.signed_request(xml)
            try:
                status = self._post(url, body)
            except Exception:  # noqa: BLE001 - a callback that cannot be reached is retried like a timeout
                status = 0
            if status == 200:
                break
        with self.wechat.lock:
            self.wechat.callback_log.append((xml, status))
        return status

    def flush_events(self) -> list[int]:
        """Deliver every event queued by user actions and message jobs, in order."""
        with self.wechat.lock:
            events, self.wechat.pending_events = self.wechat.pending_events, []
        return [self.deliver(xml) for xml in events]

    def _post(self, url: str, body: bytes) -> int:
        if self._deliver is not None:
            return self._deliver(url, body)
        if not self.callback_url:
            raise RuntimeError("no callback URL configured")
        import httpx

        return httpx.post(url, content=body, headers={"Content-Type": "text/xml"}, timeout=5.0).status_code

    def qrcode_image_url(self, ticket: str) -> str:
        return self.base_url + "showqrcode?ticket=" + quote(ticket)


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _tag(xml: str, name: str) -> str:
    start = xml.find(f"<{name}>")
    if start < 0:
        return ""
    value = xml[start + len(name) + 2: xml.find(f"</{name}>", start)]
    return value.removeprefix("<![CDATA[").removesuffix("]]>")


def _make_handler(wechat: SandboxWeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body: Any = None
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    body = _BAD_JSON
            elif method == "POST":
                body = {}
            status, content_type, payload = wechat.handle(method, parts.path, query, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

    return Handler
