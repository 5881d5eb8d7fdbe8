"""Live announcements through the campaigns push engine: the ``AnnouncementPushes`` port of
``content`` (content and campaigns are siblings that may not import each other, so the
composition root joins them, as it joins the video clinic's reminders to WeChat)."""

from __future__ import annotations

from typing import Any

from campaigns.services import managed_pushes
from campaigns.services.pushes import PushView, SendingRules
from clinical_core.persistence.uow import UnitOfWork
from content.ports.announcements import AnnouncementPush, PushProgress


def literal(text: str) -> str:
    """Template fields are jinja sources rendered at send time: make operator text (a session
    title) render as itself, whatever braces it holds."""
    if not any(mark in text for mark in ("{{", "{%", "{#", "}}", "%}", "#}")):
        return text
    return "{{ " + repr(text) + " }}"


def _progress(view: PushView) -> PushProgress:
    return PushProgress(view.public_id, view.status, view.scheduled_at, view.audience_size, dict(view.counts))


class CampaignAnnouncementPushes:
    def __init__(self, rules: SendingRules = SendingRules(), template_id: str = "tpl_sandbox_live") -> None:
        self.rules, self.template_id = rules, template_id

    def audience_size(self, uow: UnitOfWork, audience: dict[str, Any]) -> int:
        return managed_pushes.audience_size(uow, audience)

    def schedule(self, uow: UnitOfWork, push: AnnouncementPush) -> PushProgress:
        if push.kind == "template":
            content: dict[str, Any] = {"template_id": self.template_id,
                                       "fields": {k: literal(v) for k, v in push.template_fields.items()}}
        else:
            content = {"msgtype": "text", "text": push.text}
        return _progress(managed_pushes.plan(uow, actor=push.actor, name=push.name, kind=push.kind,
                                             audience_rules=push.audience, audience_label=push.audience_label,
                                             content=content, at=push.send_at, rules=self.rules))

    def cancel(self, uow: UnitOfWork, ref: str, actor: str) -> PushProgress:
        return _progress(managed_pushes.cancel(uow, ref, actor=actor))

    def progress(self, uow: UnitOfWork, refs: list[str]) -> dict[str, PushProgress]:
        return {ref: _progress(view) for ref, view in managed_pushes.views(uow, refs).items()}
