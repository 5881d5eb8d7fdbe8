"""Sandbox privacy-number provider: hands out X numbers from a small pool,
enforces expiry, refuses a number already bound to the same A or B (as the
real providers do), and records calls placed through it.

Real phone numbers stay inside the adapter; ``bindings`` keeps only keyed
fingerprints, so even the sandbox's state holds no personal data in clear.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from clinical_core.domain.errors import ExternalServiceError
from clinical_core.domain.time import Clock
from clinical_core.ports.privacy_number import AxbBinding, CallReport


@dataclass
class _Binding:
    x_number: str
    a: str
    b: str
    expires_at: datetime
    max_call_seconds: int
    active: bool = True


class SandboxPrivacyNumbers:
    def __init__(self, clock: Clock, pool: tuple[str, ...] | None = None) -> None:
        self.clock = clock
        self.pool = pool or tuple(f"1700000{i:04d}" for i in range(20))
        self.bindings: dict[str, _Binding] = {}
        self.calls: list[CallReport] = []

    @staticmethod
    def _fp(phone: str) -> str:
        return hashlib.sha256(phone.encode()).hexdigest()[:16]

    def _live(self) -> list[_Binding]:
        now = self.clock.now()
        return [b for b in self.bindings.values() if b.active and b.expires_at > now]

    def bind_axb(self, a_phone: str, b_phone: str, expires_at: datetime, *, max_call_seconds: int) -> AxbBinding:
        if expires_at <= self.clock.now():
            raise ExternalServiceError("隐号绑定的有效期必须晚于当前时间")
        a, b = self._fp(a_phone), self._fp(b_phone)
        live = self._live()
        # An X can serve several pairs, but never two pairs sharing A or B (the call could not be routed).
        for x in self.pool:
            if not any(bd.x_number == x and (bd.a in (a, b) or bd.b in (a, b)) for bd in live):
                binding_id = f"axb_{secrets.token_hex(8)}"
                self.bindings[binding_id] = _Binding(x, a, b, expires_at, max_call_seconds)
                return AxbBinding(binding_id, x, expires_at)
        raise ExternalServiceError("隐号资源不足，请稍后再试")

    def unbind(self, binding_id: str) -> None:
        binding = self.bindings.get(binding_id)
        if binding is not None:
            binding.active = False

    def simulate_call(self, binding_id: str, caller: str, seconds: int) -> CallReport:
        """Someone dials X: connected only within the binding's life; capped at its maximum."""
        binding = self.bindings.get(binding_id)
        now = self.clock.now()
        if binding is None or not binding.active or binding.expires_at <= now:
            raise ExternalServiceError("隐号绑定已失效，呼叫未接通")
        report = CallReport(binding_id, caller, now, min(seconds, binding.max_call_seconds))
        self.calls.append(report)
        return report
