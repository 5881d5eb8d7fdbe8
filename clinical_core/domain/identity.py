"""Identity documents of patients (实名制, R16): resident ID card and phone.

Validation is strict because a wrong ID number breaks the real-name check,
the age rules (R04: children under 6) and the lookup by keyed hash.
"""

from __future__ import annotations

import re
from operator import mul
from dataclasses import dataclass
from datetime import date

from clinical_core.domain.errors import InvalidInput

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ASCII_ZERO_WEIGHT = ord("0") * sum(_WEIGHTS)
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def id_card_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a GB 11643 citizen number."""
    digits = first17.encode("ascii")
    if len(digits) != 17:
        raise ValueError("a citizen number has 17 digits before its check character")
    total = sum(map(mul, digits, _WEIGHTS)) - _ASCII_ZERO_WEIGHT  # digits are ASCII '0'..'9'
    return _CHECK[total % 11]


@dataclass(frozen=True, slots=True)
class IdCard:
    """居民身份证号 (18 位)."""

    number: str
    birth_date: date
    sex: str  # "M" | "F"
    region_code: str

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


def parse_id_card(raw: str) -> IdCard:
    """Validate and parse an 18-digit resident ID number; raises InvalidInput."""
    number = (raw or "").strip().upper()
    if not _ID_RE.match(number):
        raise InvalidInput("身份证号格式不正确：应为 18 位，最后一位可为 X", field="id_card")
    if id_card_check_digit(number[:17]) != number[17]:
        raise InvalidInput("身份证号校验位不正确，请核对后重新输入", field="id_card")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidInput("身份证号中的出生日期无效", field="id_card") from None
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return IdCard(number=number, birth_date=born, sex=sex, region_code=number[:6])


def normalise_phone(raw: str) -> str:
    """Mainland mobile number, 11 digits; tolerates spaces, dashes and +86."""
    digits = re.sub(r"[\s\-]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _PHONE_RE.match(digits):
        raise InvalidInput("手机号格式不正确：应为 11 位大陆手机号", field="phone")
    return digits
