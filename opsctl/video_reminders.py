"""就诊提醒 through WeChat: the ``ReminderSender`` port of the video clinic,
adapted to the official account's template message (the WeChat client of
``campaigns``, so the shared access token, retries and back-off apply)."""

from __future__ import annotations

from typing import Any

from wechatpy.exceptions import WeChatClientException

from clinical_core.domain.errors import DomainError, ExternalServiceError
from clinical_core.domain.time import to_local
from clinical_core.ports.reminders import VisitReminder

DEFAULT_TEMPLATE = "tpl_sandbox_notice"  # 就诊提醒; the live account's template id comes from its settings


class WeChatVisitReminders:
    def __init__(self, client: Any, template_id: str = DEFAULT_TEMPLATE) -> None:
        self.client, self.template_id = client, template_id

    def send_visit_reminder(self, reminder: VisitReminder) -> None:
        data = {
            "first": {"value": "您预约的视频复诊即将开始"},
            "keyword1": {"value": f"{reminder.department} {reminder.doctor_name}"},
            "keyword2": {"value": to_local(reminder.starts_at).strftime("%m月%d日 %H:%M")},
            "remark": {"value": "请提前 5 分钟进入候诊室并保持网络畅通"},
        }
        try:
            self.client.message.send_template(reminder.openid, self.template_id, data)
        except (DomainError, WeChatClientException) as exc:
            raise ExternalServiceError(f"微信模板消息发送失败：{getattr(exc, 'errcode', '')}") from exc
