"""Domain errors.

Every error carries a one-line Chinese message for staff (CLI) and API
clients (problem+json ``detail``). The outer layers map the class to an exit
code or an HTTP status in one place each; nothing else inspects them.
Messages never contain personal data: name the entity by its public id.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the product raises on purpose."""

    title = "操作失败"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}；{self.hint}" if self.hint else self.message


class InvalidInput(DomainError):
    """The caller sent something malformed or out of range."""

    title = "输入有误"

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class NotFound(DomainError):
    title = "未找到"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, already claimed...)."""

    title = "状态冲突"


class IllegalTransition(Conflict):
    """A named state change was attempted from a state that does not allow it."""

    title = "状态不允许此操作"

    def __init__(self, entity: str, entity_id: str, state: str, action: str) -> None:
        super().__init__(f"{entity} {entity_id} 当前状态为「{state}」，不能执行「{action}」")
        self.entity, self.entity_id, self.state, self.action = entity, entity_id, state, action


class RuleViolation(DomainError):
    """A regulatory or business rule refuses the action (e.g. R07, R44)."""

    title = "不符合规定"

    def __init__(self, rule: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{message}（规则 {rule}）", hint=hint)
        self.rule = rule


class Unauthenticated(DomainError):
    title = "未认证"


class Forbidden(DomainError):
    title = "无权访问"


class ConfigurationError(DomainError):
    title = "配置错误"


class ExternalServiceError(DomainError):
    """An outside system (HIS, WeChat, payment) failed or refused."""

    title = "外部服务错误"


class ServiceUnavailable(ExternalServiceError):
    """An outside system did not answer (timeout, connection) or is down: try again later. When the
    request may have reached it, the outcome is settled by a reconciliation job, never guessed."""

    title = "外部服务暂不可用"
