"""Masking of personal data for every output (CLI, logs, reports, exports).

``138****5678``, ``440***********1234``. Masking is total: any input, even a
malformed one, comes out masked, never verbatim.
"""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    """手机号脱敏: keep the first 3 and last 4 digits of an 11-digit number."""
    if not phone:
        return ""
    digits = phone.strip()
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def mask_id_card(number: str | None) -> str:
    """身份证号脱敏: keep the first 3 and last 4 characters."""
    if not number:
        return ""
    value = number.strip()
    if len(value) > 7:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return "*" * len(value)


def mask_name(name: str | None) -> str:
    """姓名脱敏: 张三 → 张*, 欧阳娜娜 → 欧***."""
    if not name:
        return ""
    value = name.strip()
    if len(value) == 1:
        return "*"
    return value[0] + "*" * (len(value) - 1)


def mask_address(address: str | None, keep: int = 6) -> str:
    """地址脱敏: keep the district-level prefix, hide the rest."""
    if not address:
        return ""
    value = address.strip()
    if len(value) <= keep:
        return value[:2] + "*" * max(len(value) - 2, 0)
    return value[:keep] + "*" * min(len(value) - keep, 8)


def mask_identifier(value: str | None) -> str:
    """Any other personal identifier (health card, openid): last 4 visible."""
    if not value:
        return ""
    v = value.strip()
    return "*" * max(len(v) - 4, 0) + v[-4:] if len(v) > 4 else "*" * len(v)
