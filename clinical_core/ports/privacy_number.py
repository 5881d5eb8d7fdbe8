"""Port for masked-number calls (隐号电话), AXB binding as Aliyun's BindAxb or
Huawei's CreateAXBBinding: patient (A) and doctor (B) each dial the virtual
number X and reach the other without seeing the real number; the binding
expires by itself. The provider later reports each call (话单)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AxbBinding:
    binding_id: str
    x_number: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CallReport:
    """话单 pushed by the provider."""

    binding_id: str
    caller: str  # "A" (patient) or "B" (doctor)
    started_at: datetime
    duration_seconds: int


class PrivacyNumberPort(Protocol):
    def bind_axb(self, a_phone: str, b_phone: str, expires_at: datetime, *, max_call_seconds: int) -> AxbBinding: ...

    def unbind(self, binding_id: str) -> None: ...
