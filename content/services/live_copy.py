"""The words of a live session's announcements, rendered with jinja2 (sandboxed, ``StrictUndefined``:
a variable the template names but the session does not have is an error naming it, never an
empty string in a message to thousands of patients).

Operators may bring their own template for the community groups or the followers; the variables
are the session's, never a patient's: ``title``, ``when`` (11月5日 20:00), ``weekday`` (周四),
``platform`` (抖音), ``account``, ``host`` (李明医生 / 我院专家), ``minutes``, ``department``,
``purpose`` (announce | reschedule | cancel), ``previous_when`` (the old time when rescheduled, else
empty), and for a group ``group.name`` and ``group.owner``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.time import SHANGHAI
from content.domain.live import when_text

MASS_TEXT_MAX, GROUP_TEXT_MAX = 600, 600
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)

FOLLOWERS_TEMPLATE = (
    "{% if purpose == 'reschedule' %}直播改期：原定{{ previous_when }}的直播调整到{{ when }}（{{ weekday }}）。"
    "{% else %}直播预告：{{ when }}（{{ weekday }}），{% endif %}"
    "{{ host }}做客{{ platform }}「{{ account }}」直播间，主题「{{ title }}」。欢迎预约观看，直播中可提问互动。")
GROUP_TEMPLATE = (
    "各位群友好！{% if purpose == 'cancel' %}原定{{ when }}的「{{ title }}」直播取消了，给大家带来不便，敬请谅解。"
    "{% elif purpose == 'reschedule' %}原定{{ previous_when }}的「{{ title }}」直播改到{{ when }}（{{ weekday }}），"
    "{{ host }}在{{ platform }}「{{ account }}」直播间等大家。"
    "{% else %}{{ when }}（{{ weekday }}），{{ host }}做客{{ platform }}「{{ account }}」直播间，"
    "主题「{{ title }}」。欢迎预约观看，直播中可提问互动。{% endif %}")
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class SessionFacts:
    title: str
    start: datetime
    minutes: int
    platform: str  # label
    account: str
    host: str | None
    department: str | None


def variables(facts: SessionFacts, purpose: str, previous_start: datetime | None = None,
              group: dict[str, str] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": facts.title, "when": when_text(facts.start),
        "weekday": "周" + WEEKDAYS[facts.start.astimezone(SHANGHAI).weekday()], "platform": facts.platform,
        "account": facts.account, "host": f"{facts.host}医生" if facts.host else "我院专家",
        "minutes": facts.minutes, "department": facts.department or "", "purpose": purpose,
        "previous_when": when_text(previous_start) if previous_start else ""}
    if group is not None:
        values["group"] = group
    return values


def render(source: str, values: dict[str, Any], *, limit: int, what: str) -> str:
    """Render one announcement; an unknown variable or a syntax error is ``InvalidInput``."""
    try:
        text = _ENV.from_string(source).render(**values).strip()
    except UndefinedError as exc:
        raise InvalidInput(f"{what}模板使用了不存在的变量（{exc.message}）", field="template") from None
    except TemplateError:
        raise InvalidInput(f"{what}模板的写法有误", field="template") from None
    if not text:
        raise InvalidInput(f"{what}模板渲染后为空", field="template")
    if len(text) > limit:
        raise InvalidInput(f"{what}文案超过 {limit} 个字", field="template")
    return text


def check_template(source: str, what: str) -> None:
    """At the door: a template must render for a sample session and group."""
    sample = SessionFacts("高血压直播答疑", datetime(2026, 11, 5, 12, 0, tzinfo=SHANGHAI), 60, "抖音", "深大附院心内科",
                          "李明", "心血管内科")
    for purpose in ("announce", "reschedule", "cancel"):
        render(source, variables(sample, purpose, sample.start, {"name": "心内科患者群", "owner": "王护士"}),
               limit=GROUP_TEXT_MAX, what=what)


def template_fields(facts: SessionFacts, purpose: str) -> dict[str, str]:
    """The 直播预告 template message's fields (each ≤ 20 characters: WX-TPL-20 is checked by the
    push engine, which refuses a longer title rather than truncating it)."""
    return {"first": "直播改期通知" if purpose == "reschedule" else "直播预告",
            "keyword1": facts.title,
            "keyword2": when_text(facts.start),
            "keyword3": facts.platform,
            "remark": "欢迎预约观看，直播中可提问"}
