"""Errors of WeChat calls, carrying WeChat's code and its Chinese meaning."""

from __future__ import annotations

from clinical_core.domain.errors import ExternalServiceError

from campaigns.domain.limits import meaning


class WeChatApiError(ExternalServiceError):
    """WeChat refused or failed a call. ``errcode`` is WeChat's (None: no answer / HTTP error)."""

    title = "微信接口错误"

    def __init__(self, errcode: int | None, api: str, *, hint: str | None = None) -> None:
        code = "无应答" if errcode is None else str(errcode)
        super().__init__(f"微信接口 {api} 失败（{code}）：{meaning(errcode)}", hint=hint)
        self.errcode = errcode
        self.api = api


class WeChatQuotaError(WeChatApiError):
    """45009: the daily quota of an API is used up (clear_quota resets it, 10 times a month)."""

    title = "微信接口额度已用完"

    def __init__(self, api: str) -> None:
        super().__init__(45009, api, hint="次日自动恢复；紧急时可在公众平台或用 clear_quota 接口清零（每月 10 次）")
