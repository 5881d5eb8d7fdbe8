"""Deterministic, realistic demo hospital, written in bulk.

``generate(plan, vault)`` yields ``(table, rows)`` batches (plain dicts, ids
assigned here so foreign keys need no round trips); ``write`` inserts them
with executemany in large chunks. The same seed gives the same data (only the
AES-GCM nonces differ, so ciphertexts differ while plaintexts match).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, Table, func, select, text

from clinical_core.domain.identity import id_card_check_digit
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence import models as m
from clinical_core.ports.vault import Vault
from opsctl.demo.data import departments as dept_data
from opsctl.demo.data import diagnoses as dx_data
from opsctl.demo.data import drugs as drug_data
from opsctl.demo.data import names as name_data
from opsctl.demo.data import shenzhen
from opsctl.demo.data import titles as title_data

Row = dict[str, Any]
Batch = tuple[Table, list[Row]]
CHUNK = 5_000

HOSPITAL_NAME = "深圳医科大学附属医院"
# Birthplace region codes of patients born outside Shenzhen (GB/T 2260).
OTHER_REGIONS = ("440103", "440104", "441302", "445102", "440512", "441402", "430102", "360102",
                 "420102", "510104", "450102", "350102", "410102", "430602", "362502", "421002")
AGE_BUCKETS = ((0, 5, 4), (6, 17, 6), (18, 39, 22), (40, 59, 32), (60, 79, 30), (80, 95, 6))
CHANNEL_SCENES = ("qr_poster_lobby", "qr_poster_pharmacy", "qr_pkgcard_202609", "qr_pkgcard_202610",
                  "qr_live_202610", None)


@dataclass(frozen=True, slots=True)
class SeedPlan:
    patients: int
    days: int
    seed: int
    until: date  # last simulated day (inclusive), a local (Asia/Shanghai) date

    @property
    def start(self) -> date:
        return self.until - timedelta(days=self.days - 1)


def local_instant(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 21) -> datetime:
    """A realistic local time on ``day`` (office-ish hours), returned in UTC."""
    seconds = rng.randrange(first_hour * 3600, last_hour * 3600)
    local = datetime.combine(day, time(0), tzinfo=SHANGHAI) + timedelta(seconds=seconds)
    return local.astimezone(UTC)


class _Weighted:
    """Fast weighted choice over a fixed population."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]


class Generator:
    def __init__(self, plan: SeedPlan, vault: Vault) -> None:
        if plan.patients < 1 or plan.days < 1:
            raise ValueError("patients and days must be positive")
        self.plan = plan
        self.vault = vault
        self.rng = random.Random(plan.seed)
        self.now = datetime.combine(plan.until, time(23, 59), tzinfo=SHANGHAI).astimezone(UTC)
        self.surnames = _Weighted([s for s, _ in name_data.SURNAMES], [w for _, w in name_data.SURNAMES])
        self._serial = itertools.count(1)

    def public_id(self, prefix: str) -> str:
        return f"{prefix}_{base64.b32encode(self.rng.randbytes(15)).decode('ascii').lower()}"

    # -- people -------------------------------------------------------------------------
    def person_name(self, sex: str) -> str:
        rng = self.rng
        pool = name_data.GIVEN_NAME_CHARS_MALE if sex == "M" else name_data.GIVEN_NAME_CHARS_FEMALE
        first = rng.choice(pool if rng.random() < 0.7 else name_data.GIVEN_NAME_CHARS_NEUTRAL)
        given = first if rng.random() < 0.25 else first + rng.choice(pool)
        return self.surnames.pick(rng) + given

    # -- batches ------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        yield from self.organisation()
        yield from self.drugs()
        yield from self.patients_and_history()

    def organisation(self) -> Iterator[Batch]:
        rng, created = self.rng, self.now - timedelta(days=3650)
        yield m.HospitalRow.__table__, [{
            "id": 1, "public_id": self.public_id("hos"), "name": HOSPITAL_NAME, "short_name": "深医附院",
            "city": "深圳", "hotline": "0755-8888 1200", "created_at": created,
        }]
        codes = {d.code: i for i, d in enumerate(dept_data.DEPARTMENTS, start=1)}
        yield m.DepartmentRow.__table__, [{
            "id": codes[d.code], "public_id": self.public_id("dep"), "hospital_id": 1, "code": d.code,
            "name": d.name, "kind": d.kind, "parent_id": codes.get(d.parent_code) if d.parent_code else None,
            "online": d.kind == "clinical",
        } for d in dept_data.DEPARTMENTS]

        titles = {role: [t for t in title_data.TITLES if t.role == role] for role in ("doctor", "pharmacist", "nurse")}
        title_weights = {"doctor": (3, 4, 3, 2), "pharmacist": (1, 3, 3, 2, 1), "nurse": (2, 4, 3, 1, 1)}
        staff: list[Row] = []
        accounts: list[Row] = []
        self.doctors_by_dept: dict[int, list[int]] = {}

        def add(role: str, dept_code: str, title: Any | None) -> None:
            sid = len(staff) + 1
            years = rng.randint(title.min_years, title.max_years) if title else rng.randint(1, 20)
            since = self.plan.until - timedelta(days=years * 365 + rng.randrange(0, 300))
            clinical = role in ("doctor", "pharmacist", "nurse")
            phone = self.phone()
            staff.append({
                "id": sid, "public_id": self.public_id("stf"), "employee_no": f"{role[0].upper()}{sid:05d}",
                "name": self.person_name(rng.choice("MF")), "role": role, "title": title.name if title else None,
                "department_id": codes[dept_code],
                "licence_no": f"1104403{rng.randrange(10**8):08d}" if clinical else None,
                "practising_since": since if clinical else None,
                "filing_status": ("filed" if rng.random() < 0.92 else "pending") if role == "doctor" else "none",
                "may_prescribe": role == "doctor" and (title.rank > 1 or rng.random() < 0.3) and rng.random() < 0.96,
                "phone_enc": self.vault.encrypt(phone), "phone_hash": self.vault.lookup_hash("phone", phone),
                "active": True, "created_at": created,
            })
            if role == "doctor":
                self.doctors_by_dept.setdefault(codes[dept_code], []).append(sid)
            accounts.append({
                "id": sid, "public_id": self.public_id("acc"), "username": staff[-1]["employee_no"].lower(),
                "role": role, "staff_id": sid, "patient_id": None, "active": True, "created_at": created,
            })

        def pick_title(role: str) -> Any:
            return _Weighted(titles[role], title_weights[role][: len(titles[role])]).pick(rng)

        by_kind = {k: [d.code for d in dept_data.DEPARTMENTS if d.kind == k] for k in
                   ("clinical", "pharmacy", "nursing", "administrative", "medical_technology")}
        for code in by_kind["clinical"]:
            for _ in range(rng.randint(5, 9)):
                add("doctor", code, pick_title("doctor"))
            for _ in range(rng.randint(2, 4)):
                add("nurse", code, pick_title("nurse"))
        for code in by_kind["medical_technology"]:
            for _ in range(rng.randint(2, 3)):
                add("doctor", code, pick_title("doctor"))
        for code in by_kind["pharmacy"]:
            for _ in range(12):
                add("pharmacist", code, pick_title("pharmacist"))
        for code in by_kind["nursing"]:
            for _ in range(12):
                add("nurse", code, pick_title("nurse"))
        office = by_kind["administrative"][0]
        for role, count in (("admin", 2), ("operations", 4), ("customer_service", 6)):
            for _ in range(count):
                add(role, office, None)
        self.staff_count = len(staff)
        yield m.StaffRow.__table__, staff
        yield m.AccountRow.__table__, accounts

    def drugs(self) -> Iterator[Batch]:
        yield m.DrugRow.__table__, [{
            "id": i, "public_id": self.public_id("drg"), "code": d.code, "generic_name": d.generic_name,
            "trade_name": d.trade_name, "specification": d.specification, "dosage_form": d.dosage_form,
            "unit": d.unit, "price_fen": d.price_fen, "category": d.category, "control_class": d.control_class,
            "prescription_only": d.prescription_only, "active": True,
        } for i, d in enumerate(drug_data.DRUGS, start=1)]

    def phone(self) -> str:
        return self.rng.choice(shenzhen.PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def patients_and_history(self) -> Iterator[Batch]:
        rng, vault, plan = self.rng, self.vault, self.plan
        ages = _Weighted([(lo, hi) for lo, hi, _ in AGE_BUCKETS], [w for *_, w in AGE_BUCKETS])
        districts = [d for d in shenzhen.DISTRICTS]
        dept_ids = {d.code: i for i, d in enumerate(dept_data.DEPARTMENTS, start=1)}
        chronic = [d for d in dx_data.DIAGNOSES if d.chronic and d.department_code in dept_ids]
        by_dept: dict[str, list[Any]] = {}
        for d in dx_data.DIAGNOSES:
            by_dept.setdefault(d.department_code, []).append(d)
        seen_ids: set[str] = set()
        seen_phones: set[str] = set()
        openids: set[str] = set()
        patients: list[Row] = []
        followers: list[Row] = []
        visits: list[Row] = []
        visit_serial = itertools.count(1)
        follower_serial = itertools.count(1)
        window_days = plan.days
        history_days = 730

        def openid() -> str:
            while True:
                value = "o" + base64.b64encode(rng.randbytes(21), b"-_").decode("ascii")[:27]
                if value not in openids:
                    openids.add(value)
                    return value

        for pid in range(1, plan.patients + 1):
            lo, hi = ages.pick(rng)
            age_days = rng.randint(lo * 365 + 1, hi * 365 + 364)
            born = plan.until - timedelta(days=age_days)
            sex = "M" if rng.random() < 0.48 else "F"
            district = rng.choice(districts)
            street = rng.choice(district.streets)
            region = district.code[:6] if rng.random() < 0.45 and district.code[:6].isdigit() else rng.choice(OTHER_REGIONS)
            while True:
                seq = rng.randrange(0, 500) * 2 + (1 if sex == "M" else 0)
                first17 = f"{region}{born:%Y%m%d}{seq:03d}"
                number = first17 + id_card_check_digit(first17)
                if number not in seen_ids:
                    seen_ids.add(number)
                    break
            while (phone := self.phone()) in seen_phones:
                pass
            seen_phones.add(phone)
            road = rng.choice(street.roads) if street.roads else street.name
            address = (f"广东省深圳市{district.name}{street.name}{road}{rng.randint(1, 399)}号"
                       f"{rng.randint(1, 30)}栋{rng.randint(1, 33)}{rng.randint(1, 8):02d}")
            card = f"SZ{rng.randrange(10**10):010d}"
            oid = openid() if rng.random() < 0.7 else None
            registered = self.now - timedelta(days=rng.randrange(0, history_days), seconds=rng.randrange(86400))
            patients.append({
                "id": pid, "public_id": self.public_id("pat"),
                "name_enc": vault.encrypt(self.person_name(sex)),
                "phone_enc": vault.encrypt(phone), "phone_hash": vault.lookup_hash("phone", phone),
                "id_card_enc": vault.encrypt(number), "id_card_hash": vault.lookup_hash("id_card", number),
                "health_card_enc": vault.encrypt(card), "health_card_hash": vault.lookup_hash("health_card", card),
                "address_enc": vault.encrypt(address), "district_code": district.code,
                "sex": sex, "birth_date": born, "openid": oid, "created_at": registered,
            })
            if oid is not None:
                subscribed = registered - timedelta(days=rng.randrange(0, 60))
                followers.append(self._follower(next(follower_serial), oid, pid, subscribed))
            # Offline visits (HIS): a main chronic diagnosis, 1–4 visits over two years.
            main = rng.choice(chronic)
            dept = dept_ids[main.department_code]
            doctors = self.doctors_by_dept.get(dept, [])
            for _ in range(rng.randint(1, 4)):
                dx = [main]
                extra = by_dept.get(main.department_code, [])
                if len(extra) > 1 and rng.random() < 0.35:
                    dx.append(rng.choice([d for d in extra if d is not main]))
                n = next(visit_serial)
                visits.append({
                    "id": n, "visit_no": f"MZ{plan.until:%Y}{n:08d}", "patient_id": pid, "department_id": dept,
                    "doctor_id": rng.choice(doctors) if doctors else None,
                    "visit_type": "outpatient" if rng.random() < 0.9 else "inpatient",
                    "visited_at": local_instant(plan.until - timedelta(days=rng.randrange(0, history_days)), rng),
                    "diagnoses": [{"icd10": d.icd10, "name": d.name} for d in dx],
                })
            if len(visits) >= CHUNK:
                yield m.PatientRow.__table__, patients
                yield m.HisVisitRow.__table__, visits
                patients, visits = [], []
        yield m.PatientRow.__table__, patients
        yield m.HisVisitRow.__table__, visits

        # Followers who have not (yet) registered as patients, mostly won during the window.
        unbound = []
        for _ in range(int(plan.patients * 0.6)):
            day = plan.until - timedelta(days=rng.randrange(0, window_days if rng.random() < 0.6 else history_days))
            unbound.append(self._follower(next(follower_serial), openid(), None, local_instant(day, rng, 7, 23)))
            if len(unbound) >= CHUNK:
                yield m.FollowerRow.__table__, unbound
                unbound = []
        yield m.FollowerRow.__table__, followers + unbound

    def _follower(self, fid: int, oid: str, patient_id: int | None, subscribed: datetime) -> Row:
        rng = self.rng
        left = None
        if rng.random() < 0.12:
            left = min(subscribed + timedelta(days=rng.randrange(1, 200), seconds=rng.randrange(86400)), self.now)
        return {"id": fid, "openid": oid, "patient_id": patient_id, "subscribed_at": subscribed,
                "unsubscribed_at": left, "scene": rng.choice(CHANNEL_SCENES)}


def write(engine: Engine, batches: Iterator[Batch], on_rows: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Insert the batches in chunks inside one transaction; returns rows per table."""
    counts: dict[str, int] = {}
    with engine.begin() as connection:
        for table, rows in batches:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                connection.execute(table.insert(), chunk)
                counts[table.name] = counts.get(table.name, 0) + len(chunk)
                if on_rows:
                    on_rows(table.name, len(chunk))
        if connection.dialect.name == "postgresql":
            for name in counts:
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
                ))
    return counts


def is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not connection.scalar(select(func.count()).select_from(m.HospitalRow))
