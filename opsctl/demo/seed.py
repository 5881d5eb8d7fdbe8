"""Deterministic, realistic demo hospital, written in bulk.

``Generator`` yields ``(table, rows)`` batches (plain dicts; ids assigned
here so foreign keys need no round trips). Each family of tables draws from
its own random stream (``Random(f"{seed}:{name}")``), so the families can be
generated in separate processes (``parts()``) and still give exactly the
same data as one process. ``write`` loads them in one transaction.

The same seed gives the same data; only the AES-GCM nonces differ, so the
ciphertexts differ while the plaintexts match.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Dialect, Engine, Table, func, select

from clinical_core.domain.identity import id_card_check_digit
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence import models as m
from clinical_core.persistence.base import Base
from clinical_core.persistence.bulk import (
    BulkLoader,
    PreparedRows,
    RowPreparer,
    sqlite_foreign_keys_off,
)
from clinical_core.persistence.his import HisResultRow
from clinical_core.ports.vault import Vault
from opsctl.demo.data import departments as dept_data
from opsctl.demo.data import diagnoses as dx_data
from opsctl.demo.data import drugs as drug_data
from opsctl.demo.data import lab_results, shenzhen
from opsctl.demo.data import names as name_data
from opsctl.demo.data import titles as title_data

Row = dict[str, Any]
Batch = tuple[Table, list[Row]]
CHUNK = 5_000

HOSPITAL_NAME = "深圳医科大学附属医院"
# Birthplace region codes of patients born outside Shenzhen (GB/T 2260).
OTHER_REGIONS = ("440103", "440104", "441302", "445102", "440512", "441402", "430102", "360102",
                 "420102", "510104", "450102", "350102", "410102", "430602", "362502", "421002")
AGE_BUCKETS = ((0, 5, 4), (6, 17, 6), (18, 39, 22), (40, 59, 32), (60, 79, 30), (80, 95, 6))
HISTORY_DAYS = 730  # offline visits and registrations reach two years back
PAEDIATRICS = "PEDI"
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


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SHANGHAI_OFFSET = 8 * 3600  # China has kept UTC+8 without daylight saving since 1991


def local_instant(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 21) -> datetime:
    """A realistic local time on ``day`` (office-ish hours), returned in UTC."""
    seconds = first_hour * 3600 + int(rng.random() * (last_hour - first_hour) * 3600)
    midnight = (day.toordinal() - _EPOCH_ORDINAL) * 86400 - _SHANGHAI_OFFSET
    return datetime.fromtimestamp(midnight + seconds, UTC)


class _Weighted:
    """Fast weighted choice over a fixed population."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]


class Generator:
    """The demo hospital. ``parts()`` are independent and may run in parallel."""

    def __init__(self, plan: SeedPlan, vault: Vault) -> None:
        if plan.patients < 1 or plan.days < 1:
            raise ValueError("patients and days must be positive")
        self.plan = plan
        self.vault = vault
        self.now = datetime.combine(plan.until, time(23, 59), tzinfo=SHANGHAI).astimezone(UTC)
        self.surnames = _Weighted([s for s, _ in name_data.SURNAMES], [w for _, w in name_data.SURNAMES])
        self.dept_ids = {d.code: i for i, d in enumerate(dept_data.DEPARTMENTS, start=1)}

    def stream(self, name: str) -> random.Random:
        return random.Random(f"{self.plan.seed}:{name}")

    # -- the independent parts --------------------------------------------------------------
    def parts(self) -> list[Callable[[], Iterator[Batch]]]:
        """Families of tables that share no random state (patients are the heavy one)."""
        return [self.organisation_and_patients, self.visits_and_prospects]

    def batches(self) -> Iterator[Batch]:
        for part in self.parts():
            yield from part()

    def organisation_and_patients(self) -> Iterator[Batch]:
        yield from self.organisation()
        yield from self.drugs()
        yield from self.patients()

    def visits_and_prospects(self) -> Iterator[Batch]:
        yield from self.his_visits()
        yield from self.prospect_followers()

    # -- shared, cheap, replayed by every part ------------------------------------------
    def birth_dates(self) -> list[date]:
        """Each patient's birth date, from its own stream (visits depend on age)."""
        rng, until = self.stream("ages"), self.plan.until
        rnd = rng.random
        ages = _Weighted([(lo, hi) for lo, hi, _ in AGE_BUCKETS], [w for *_, w in AGE_BUCKETS])
        born = []
        for _ in range(self.plan.patients):
            lo, hi = ages.pick(rng)
            born.append(until - timedelta(days=lo * 365 + 1 + int(rnd() * ((hi - lo) * 365 + 364))))
        return born

    def doctors_by_department(self) -> dict[int, list[int]]:
        """Staff ids of doctors per department id (replays the organisation stream, no encryption)."""
        doctors: dict[int, list[int]] = {}
        for sid, role, dept_code, _title, _rng in self._staff_plan():
            if role == "doctor":
                doctors.setdefault(self.dept_ids[dept_code], []).append(sid)
        return doctors

    # -- organisation ------------------------------------------------------------------------
    def _staff_plan(self) -> Iterator[tuple[int, str, str, Any, random.Random]]:
        rng = self.stream("organisation")
        titles = {role: [t for t in title_data.TITLES if t.role == role] for role in ("doctor", "pharmacist", "nurse")}
        weights = {"doctor": (3, 4, 3, 2), "pharmacist": (1, 3, 3, 2, 1), "nurse": (2, 4, 3, 1, 1)}
        pickers = {role: _Weighted(ts, weights[role][: len(ts)]) for role, ts in titles.items()}
        by_kind = {k: [d.code for d in dept_data.DEPARTMENTS if d.kind == k] for k in
                   ("clinical", "pharmacy", "nursing", "administrative", "medical_technology")}
        plan: list[tuple[str, str]] = []
        for code in by_kind["clinical"]:
            plan += [("doctor", code)] * rng.randint(5, 9) + [("nurse", code)] * rng.randint(2, 4)
        for code in by_kind["medical_technology"]:
            plan += [("doctor", code)] * rng.randint(2, 3)
        plan += [("pharmacist", code) for code in by_kind["pharmacy"] for _ in range(12)]
        plan += [("nurse", code) for code in by_kind["nursing"] for _ in range(12)]
        office = by_kind["administrative"][0]
        plan += [(role, office) for role, n in (("admin", 2), ("operations", 4), ("customer_service", 6))
                 for _ in range(n)]
        for sid, (role, code) in enumerate(plan, start=1):
            title = pickers[role].pick(rng) if role in pickers else None
            # Each staff member's details come from a sub-stream, so replaying the plan stays cheap.
            yield sid, role, code, title, random.Random(f"{self.plan.seed}:staff:{sid}")

    def organisation(self) -> Iterator[Batch]:
        rng, created = self.stream("hospital"), self.now - timedelta(days=3650)
        yield m.HospitalRow.__table__, [{
            "id": 1, "public_id": public_id(rng, "hos"), "name": HOSPITAL_NAME, "short_name": "深医附院",
            "city": "深圳", "hotline": "0755-8888 1200", "created_at": created,
        }]
        codes = self.dept_ids
        yield m.DepartmentRow.__table__, [{
            "id": codes[d.code], "public_id": public_id(rng, "dep"), "hospital_id": 1, "code": d.code,
            "name": d.name, "kind": d.kind, "parent_id": codes.get(d.parent_code) if d.parent_code else None,
            "online": d.kind == "clinical",
        } for d in dept_data.DEPARTMENTS]
        staff: list[Row] = []
        accounts: list[Row] = []
        for sid, role, code, title, srng in self._staff_plan():
            years = srng.randint(title.min_years, title.max_years) if title else srng.randint(1, 20)
            since = self.plan.until - timedelta(days=years * 365 + srng.randrange(0, 300))
            clinical = role in ("doctor", "pharmacist", "nurse")
            phone = random_phone(srng)
            employee_no = f"{role[0].upper()}{sid:05d}"
            staff.append({
                "id": sid, "public_id": public_id(srng, "stf"), "employee_no": employee_no,
                "name": self.person_name(srng, srng.choice("MF")), "role": role,
                "title": title.name if title else None, "department_id": codes[code],
                "licence_no": f"1104403{srng.randrange(10**8):08d}" if clinical else None,
                "practising_since": since if clinical else None,
                "filing_status": ("filed" if srng.random() < 0.92 else "pending") if role == "doctor" else "none",
                "may_prescribe": role == "doctor" and (title.rank > 1 or srng.random() < 0.3) and srng.random() < 0.96,
                "phone_enc": self.vault.encrypt(phone), "phone_hash": self.vault.lookup_hash("phone", phone),
                "active": True, "created_at": created,
            })
            accounts.append({
                "id": sid, "public_id": public_id(srng, "acc"), "username": employee_no.lower(),
                "role": role, "staff_id": sid, "patient_id": None, "active": True, "created_at": created,
            })
        yield m.StaffRow.__table__, staff
        yield m.AccountRow.__table__, accounts

    def drugs(self) -> Iterator[Batch]:
        rng = self.stream("drugs")
        yield m.DrugRow.__table__, [{
            "id": i, "public_id": public_id(rng, "drg"), "code": d.code, "generic_name": d.generic_name,
            "trade_name": d.trade_name, "specification": d.specification, "dosage_form": d.dosage_form,
            "unit": d.unit, "price_fen": d.price_fen, "category": d.category, "control_class": d.control_class,
            "prescription_only": d.prescription_only, "active": True,
        } for i, d in enumerate(drug_data.DRUGS, start=1)]

    # -- people ------------------------------------------------------------------------------
    def person_name(self, rng: random.Random, sex: str) -> str:
        rnd = rng.random
        pool = name_data.GIVEN_NAME_CHARS_MALE if sex == "M" else name_data.GIVEN_NAME_CHARS_FEMALE
        first_pool = pool if rnd() < 0.7 else name_data.GIVEN_NAME_CHARS_NEUTRAL
        given = first_pool[int(rnd() * len(first_pool))]
        if rnd() >= 0.25:
            given += pool[int(rnd() * len(pool))]
        return self.surnames.pick(rng) + given

    def patients(self) -> Iterator[Batch]:
        """Patients with encrypted identity, and the followers among them (bound openids).

        A bound follower's id is its patient's id; prospects (unbound) come after.
        """
        rng, vault, plan = self.stream("patients"), self.vault, self.plan
        rnd = rng.random
        encrypt, lookup_hash = vault.encrypt, vault.lookup_hash
        districts = list(shenzhen.DISTRICTS)
        prefixes = {id(st): [f"广东省深圳市{d.name}{st.name}{road}" for road in st.roads or ("",)]
                    for d in districts for st in d.streets}
        registered_days = day_pool(plan.until, HISTORY_DAYS)
        seen_ids: set[str] = set()
        seen_phones: set[str] = set()
        ymd: dict[date, str] = {}
        patients: list[Row] = []
        followers: list[Row] = []
        for pid, born in enumerate(self.birth_dates(), start=1):
            sex = "M" if rnd() < 0.48 else "F"
            district = districts[int(rnd() * len(districts))]
            street = district.streets[int(rnd() * len(district.streets))]
            region = district.code[:6] if rnd() < 0.45 else OTHER_REGIONS[int(rnd() * len(OTHER_REGIONS))]
            born_text = ymd.get(born) or ymd.setdefault(born, f"{born:%Y%m%d}")
            while True:
                first17 = f"{region}{born_text}{int(rnd() * 500) * 2 + (sex == 'M'):03d}"
                number = first17 + id_card_check_digit(first17)
                if number not in seen_ids:
                    seen_ids.add(number)
                    break
            while (phone := random_phone(rng)) in seen_phones:
                pass
            seen_phones.add(phone)
            on_street = prefixes[id(street)]
            address = (f"{on_street[int(rnd() * len(on_street))]}{1 + int(rnd() * 399)}号"
                       f"{1 + int(rnd() * 30)}栋{1 + int(rnd() * 33)}{1 + int(rnd() * 8):02d}")
            card = f"SZ{int(rnd() * 10**10):010d}"
            oid = random_openid(rng) if rnd() < 0.7 else None
            registered = local_instant(registered_days[int(rnd() * len(registered_days))], rng, 7, 22)
            patients.append({
                "id": pid, "public_id": public_id(rng, "pat"),
                "name_enc": encrypt(self.person_name(rng, sex)),
                "phone_enc": encrypt(phone), "phone_hash": lookup_hash("phone", phone),
                "id_card_enc": encrypt(number), "id_card_hash": lookup_hash("id_card", number),
                "health_card_enc": encrypt(card), "health_card_hash": lookup_hash("health_card", card),
                "address_enc": encrypt(address), "district_code": district.code,
                "sex": sex, "birth_date": born, "openid": oid, "created_at": registered,
            })
            if oid is not None:
                followers.append(self._follower(rng, pid, oid, pid, registered - timedelta(days=int(rnd() * 60))))
            if len(patients) >= CHUNK:
                yield m.PatientRow.__table__, patients
                patients = []
        yield m.PatientRow.__table__, patients
        for start in range(0, len(followers), CHUNK):
            yield m.FollowerRow.__table__, followers[start : start + CHUNK]

    def his_visits(self) -> Iterator[Batch]:
        """Offline visits (HIS): per patient a main diagnosis fitting their age, 1–4 visits in two years."""
        rng, plan = self.stream("visits"), self.plan
        rnd = rng.random
        doctors = self.doctors_by_department()
        by_dept: dict[str, list[Any]] = {}
        for d in dx_data.DIAGNOSES:
            by_dept.setdefault(d.department_code, []).append(d)
        chronic = [d for d in dx_data.DIAGNOSES if d.chronic and d.department_code in self.dept_ids]
        children = [d for d in dx_data.DIAGNOSES if d.department_code == PAEDIATRICS] or chronic
        # For each main diagnosis: [main] and [main, another of its department] — shared
        # lists, so the loader encodes each combination once per batch.
        combos = {
            d.icd10: [[{"icd10": d.icd10, "name": d.name}]] + [
                [{"icd10": d.icd10, "name": d.name}, {"icd10": o.icd10, "name": o.name}]
                for o in by_dept[d.department_code] if o.icd10 != d.icd10
            ]
            for d in (*chronic, *children)
        }
        visit_days = day_pool(plan.until, HISTORY_DAYS)
        adult_born = plan.until - timedelta(days=18 * 365)
        year = f"{plan.until:%Y}"
        visits: list[Row] = []
        reports: list[Row] = []  # lab and exam reports, from their own stream (visits stay as they were)
        report_rng, report_id = self.stream("his_results"), 1
        n = 0
        for pid, born in enumerate(self.birth_dates(), start=1):
            pool = children if born > adult_born else chronic
            main = pool[int(rnd() * len(pool))]
            dept = self.dept_ids[main.department_code]
            dept_doctors = doctors.get(dept, [])
            choices = combos[main.icd10]
            for _ in range(1 + int(rnd() * 4)):
                n += 1
                visits.append({
                    "id": n, "visit_no": f"MZ{year}{n:08d}", "patient_id": pid, "department_id": dept,
                    "doctor_id": dept_doctors[int(rnd() * len(dept_doctors))] if dept_doctors else None,
                    "visit_type": "outpatient" if rnd() < 0.9 else "inpatient",
                    "visited_at": local_instant(visit_days[int(rnd() * len(visit_days))], rng),
                    "diagnoses": choices[0] if len(choices) == 1 or rnd() >= 0.35
                    else choices[1 + int(rnd() * (len(choices) - 1))],
                })
                visit = visits[-1]
                made = lab_results.reports_for(report_rng, first_id=report_id, visit_id=n, patient_id=pid,
                                               visit_no=visit["visit_no"],
                                               icd10s=[d["icd10"] for d in visit["diagnoses"]],
                                               visited_at=visit["visited_at"])
                reports.extend(made)
                report_id += len(made)
            if len(visits) >= CHUNK:
                yield m.HisVisitRow.__table__, visits
                yield HisResultRow.__table__, reports
                visits, reports = [], []
        yield m.HisVisitRow.__table__, visits
        yield HisResultRow.__table__, reports

    def prospect_followers(self) -> Iterator[Batch]:
        """Followers who have not (yet) registered as patients, mostly won during the window."""
        rng, plan = self.stream("prospects"), self.plan
        rnd = rng.random
        recent, older = day_pool(plan.until, plan.days - 1), day_pool(plan.until, HISTORY_DAYS)
        rows: list[Row] = []
        for k in range(1, int(plan.patients * 0.6) + 1):
            days = recent if rnd() < 0.6 else older
            subscribed = local_instant(days[int(rnd() * len(days))], rng, 7, 23)
            rows.append(self._follower(rng, plan.patients + k, random_openid(rng), None, subscribed))
            if len(rows) >= CHUNK:
                yield m.FollowerRow.__table__, rows
                rows = []
        yield m.FollowerRow.__table__, rows

    def _follower(self, rng: random.Random, fid: int, oid: str, patient_id: int | None, subscribed: datetime) -> Row:
        rnd = rng.random
        left = None
        if rnd() < 0.12:
            left = min(subscribed + timedelta(days=1 + int(rnd() * 200), seconds=int(rnd() * 86400)), self.now)
        return {"id": fid, "openid": oid, "patient_id": patient_id, "subscribed_at": subscribed,
                "unsubscribed_at": left, "scene": CHANNEL_SCENES[int(rnd() * len(CHANNEL_SCENES))]}


def public_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(96):024x}"  # the shape of clinical_core.domain.ids.new_public_id


def random_phone(rng: random.Random) -> str:
    rnd = rng.random
    return shenzhen.PHONE_PREFIXES[int(rnd() * len(shenzhen.PHONE_PREFIXES))] + f"{int(rnd() * 10**8):08d}"


def random_openid(rng: random.Random) -> str:
    """28 characters like WeChat's (``o`` + 27 base64url); 162 random bits, so no clashes in practice."""
    return "o" + base64.b64encode(rng.randbytes(21), b"-_").decode("ascii")[:27]


def day_pool(until: date, days: int) -> list[date]:
    return [until - timedelta(days=i) for i in range(days + 1)]


def prepared(part: Callable[[], Iterator[Batch]], dialect: Dialect) -> Iterator[PreparedRows]:
    """One part of the demo hospital as DB-ready rows for ``dialect``."""
    preparer = RowPreparer(dialect)
    for table, rows in part():
        if rows:
            yield preparer.prepare(table, rows)


def write(
    engine: Engine, batches: Iterable[PreparedRows], on_rows: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Insert the rows inside one transaction (all or nothing); returns rows per table."""
    tables = Base.metadata.tables
    with engine.connect() as connection, sqlite_foreign_keys_off(connection), connection.begin():
        loader = BulkLoader(connection, defer_indexes=True)  # the database is empty: see is_empty()
        for batch in batches:
            loader.load_prepared(tables[batch.table], batch)
            if on_rows:
                on_rows(batch.table, batch.count)
        loader.finish()
    return dict(loader.loaded)


def is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not any(
            connection.scalar(select(func.count()).select_from(table))
            for table in (m.HospitalRow, m.PatientRow, m.AccountRow)
        )


def is_demo(engine: Engine) -> bool:
    """Whether the data was made by the demo generator (so resetting it loses nothing real)."""
    with engine.connect() as connection:
        return bool(connection.scalar(select(func.count()).select_from(m.AuditRow).where(m.AuditRow.action == "demo.seed")))
