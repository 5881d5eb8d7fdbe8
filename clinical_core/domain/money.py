"""Money is integer fen (分). Yuan appear only when rendering."""

from __future__ import annotations

from clinical_core.domain.errors import InvalidInput


def yuan_to_fen(text: str) -> int:
    """Parse a yuan amount such as ``"12.50"`` exactly (no floats)."""
    value = (text or "").strip().replace("¥", "").replace("元", "")
    if not value:
        raise InvalidInput("金额不能为空")
    negative = value.startswith("-")
    if negative:
        value = value[1:]
    whole, _, frac = value.partition(".")
    if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
        raise InvalidInput(f"金额「{text}」格式不正确，应为最多两位小数的元")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    return -fen if negative else fen


def format_fen(fen: int) -> str:
    """``12345`` → ``¥123.45``."""
    sign = "-" if fen < 0 else ""
    whole, rest = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{rest:02d}"
