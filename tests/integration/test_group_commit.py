"""Group commit (``clinical_core.persistence.group_commit``): requests share one SQLite transaction,
each all-or-nothing in a savepoint, none answered before the batch's commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from clinical_core.domain.consultation import ServiceKind
from clinical_core.domain.errors import ConfigurationError, Conflict
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.engine import make_engine
from clinical_core.persistence.group_commit import GroupCommitter
from clinical_core.persistence.models import AuditRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import accounts, consult_settings, consultation
from opsctl.config import HttpSettings, Settings
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.clinic import ADMIN, OPS, build_clinic


@pytest.fixture
def committer(sqlite_container: Container) -> Iterator[GroupCommitter]:
    group = GroupCommitter(sqlite_container.uow, max_batch=8)
    yield group
    group.close()


def _write(tag: str, *, commit: bool = True, then: Callable[[], None] | None = None,
           callback: Callable[[], None] | None = None) -> Callable[[UnitOfWork], str]:
    """Work that stores one audit row tagged ``tag``; ``then`` runs after the write (inside the block)."""
    def work(uow: UnitOfWork) -> str:
        with uow.core_first():
            uow.connection.execute(insert(AuditRow), {"at": uow.clock.now(), "actor": "test", "action": tag,
                                                      "entity_type": "test", "entity_id": tag, "details": {}})
            if then is not None:
                then()
            if callback is not None:
                uow.after_commit(callback)
            if commit:
                uow.commit()
        return tag
    return work


def _stored(container: Container) -> list[str]:
    with container.engine.connect() as connection:
        return sorted(connection.scalars(select(AuditRow.action).where(AuditRow.actor == "test")))


def _hold(committer: GroupCommitter) -> tuple[threading.Event, Future[str]]:
    """A first job that holds the thread until released, so that the next ones queue into one batch."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        assert release.wait(10), "never released"
    blocker = committer.submit(_write("hold", then=hold))
    assert started.wait(10)
    return release, blocker


def test_waiting_requests_share_one_transaction_and_each_gets_its_answer(
        sqlite_container: Container, committer: GroupCommitter) -> None:
    release, first = _hold(committer)
    rest = [committer.submit(_write(f"a{i}")) for i in range(1, 6)]
    release.set()
    assert [f.result(10) for f in [first, *rest]] == ["hold"] + [f"a{i}" for i in range(1, 6)]
    assert committer.batches == 2  # the first alone, the five that queued behind it together
    assert _stored(sqlite_container) == [f"a{i}" for i in range(1, 6)] + ["hold"]


def test_a_refused_request_undoes_only_its_own_writes(sqlite_container: Container, committer: GroupCommitter) -> None:
    def refuse() -> None:
        raise Conflict("已被其他医生接诊")

    release, blocker = _hold(committer)
    jobs = [blocker, committer.submit(_write("kept1")),
            committer.submit(_write("refused", then=refuse)), committer.submit(_write("uncommitted", commit=False)),
            committer.submit(_write("kept2"))]
    release.set()
    with pytest.raises(Conflict):
        jobs[2].result(10)
    assert [jobs[i].result(10) for i in (0, 1, 3, 4)] == ["hold", "kept1", "uncommitted", "kept2"]
    assert committer.batches == 2
    assert _stored(sqlite_container) == ["hold", "kept1", "kept2"]


def test_no_request_is_answered_before_the_batch_commits(sqlite_container: Container,
                                                         committer: GroupCommitter) -> None:
    release, blocker = _hold(committer)
    seen: dict[str, bool] = {}
    early = committer.submit(_write("early"))
    late_started = threading.Event()
    late_release = threading.Event()

    def late_hold() -> None:
        late_started.set()
        late_release.wait(10)
    late = committer.submit(_write("late", then=late_hold))
    release.set()
    assert blocker.result(10) == "hold"
    assert late_started.wait(10)
    seen["early done while its batch runs"] = early.done()
    seen["early stored before its batch commits"] = "early" in _stored(sqlite_container)
    late_release.set()
    assert early.result(10) == "early" and late.result(10) == "late"
    assert seen == {"early done while its batch runs": False, "early stored before its batch commits": False}


def test_a_failed_commit_fails_every_request_of_the_batch(sqlite_container: Container,
                                                          committer: GroupCommitter) -> None:
    """A deferred foreign-key violation is only found at COMMIT: the whole batch is lost, and says so."""
    def orphan(uow: UnitOfWork) -> str:
        with uow:
            uow.connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            uow.connection.exec_driver_sql(
                "INSERT INTO consult_messages (public_id, consultation_id, sender, kind, created_at) "
                "VALUES ('msg_orphan', 999999, 'doctor', 'text', '2026-11-26 00:00:00')")
            uow.commit()
        return "orphan"

    release, blocker = _hold(committer)
    batch = [committer.submit(_write("b1")), committer.submit(orphan), committer.submit(_write("b2"))]
    release.set()
    assert blocker.result(10) == "hold"
    for future in batch:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            future.result(10)
    assert _stored(sqlite_container) == ["hold"]
    follow = committer.submit(_write("after"))  # the thread goes on
    assert follow.result(10) == "after"


def test_after_commit_callbacks_run_after_the_batch_commit_in_order(sqlite_container: Container,
                                                                    committer: GroupCommitter) -> None:
    calls: list[tuple[str, list[str]]] = []

    def note(tag: str) -> Callable[[], None]:
        return lambda: calls.append((tag, _stored(sqlite_container)))

    def broken() -> None:
        raise RuntimeError("推送失败")

    def refuse() -> None:
        raise Conflict("拒绝")
    release, _blocker = _hold(committer)
    first = committer.submit(_write("c1", callback=note("c1")))
    failing = committer.submit(_write("c2", callback=broken))
    refused = committer.submit(_write("c3", callback=note("c3"), then=refuse))
    last = committer.submit(_write("c4", callback=note("c4")))
    release.set()
    assert first.result(10) == "c1" and last.result(10) == "c4"
    with pytest.raises(RuntimeError, match="推送失败"):
        failing.result(10)  # committed, as a plain unit of work whose commit() raised its callback's error
    with pytest.raises(Conflict):
        refused.result(10)
    everything = ["c1", "c2", "c4", "hold"]
    assert calls == [("c1", everything), ("c4", everything)]  # after the commit; never for undone work


def test_a_transaction_sqlite_ended_fails_the_requests_before_and_runs_the_rest_again(
        sqlite_container: Container, committer: GroupCommitter) -> None:
    def end_transaction(uow: UnitOfWork) -> str:
        with uow:
            uow.connection.connection.driver_connection.execute("ROLLBACK")  # as SQLite does on a full disk
            raise RuntimeError("database or disk is full")

    release, blocker = _hold(committer)
    before = committer.submit(_write("lost"))
    failing = committer.submit(end_transaction)
    after = [committer.submit(_write("d1")), committer.submit(_write("d2"))]
    release.set()
    assert blocker.result(10) == "hold"
    for future in (before, failing):
        with pytest.raises(RuntimeError, match="disk is full"):
            future.result(10)
    assert [f.result(10) for f in after] == ["d1", "d2"]
    assert _stored(sqlite_container) == ["d1", "d2", "hold"]


def test_two_claims_of_one_consultation_in_one_batch_exactly_one_wins(sqlite_container: Container) -> None:
    """The consultation use cases through the fast path's group committer: the later claim sees the
    earlier one's (not yet committed) write and is refused."""
    clinic = build_clinic(sqlite_container)
    service = consult_settings.configure_service(sqlite_container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    created = consultation.create_consultation(sqlite_container.uow(), clinic.patient, sqlite_container.payments,
                                               service, "胸闷一周，活动后加重").consultation.public_id
    group = GroupCommitter(sqlite_container.uow)
    try:
        release, blocker = _hold(group)
        claims = [group.submit(lambda uow, d=d: consultation.claim_consultation(uow, d, created))
                  for d in (clinic.doctor_a, clinic.doctor_b)]
        release.set()
        blocker.result(10)
        outcomes = []
        for future in claims:
            try:
                outcomes.append(future.result(10).status)
            except Conflict:
                outcomes.append("conflict")
    finally:
        group.close()
    assert outcomes == ["claimed", "conflict"]
    with sqlite_container.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "consultation.claim")) == 1


def test_a_connection_whose_commit_failed_goes_back_to_the_pool_rolled_back(tmp_path: Path) -> None:
    """SQLite keeps the transaction open after a refused COMMIT while SQLAlchemy counts it as ended:
    without the engine's check-in rollback the pool's next user fails on BEGIN (a failed batch of the
    group committer would break the connection for every later request)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent (id))")
    with engine.connect() as connection:
        connection.begin()
        connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        connection.exec_driver_sql("INSERT INTO child (parent_id) VALUES (5)")
        with pytest.raises(IntegrityError):
            connection.commit()
    with engine.begin() as connection:  # the same pooled connection
        assert connection.exec_driver_sql("SELECT count(*) FROM child").scalar() == 0
        connection.exec_driver_sql("INSERT INTO parent (id) VALUES (1)")
    engine.dispose()


def test_the_api_groups_concurrent_hot_requests_on_sqlite(sqlite_container: Container) -> None:
    """Through the app: 24 concurrent creations and their claims, all answered correctly, in fewer
    transactions than requests; the default is on with SQLite and can be turned off."""
    build_clinic(sqlite_container)
    service = consult_settings.configure_service(sqlite_container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    patient = accounts.issue_token(sqlite_container.uow(), ADMIN, "pt.zhang", ttl=timedelta(days=1)).token
    doctor = accounts.issue_token(sqlite_container.uow(), ADMIN, "dr.a", ttl=timedelta(days=1)).token
    app = create_app(sqlite_container.settings, sqlite_container)
    group = app.hot_routes._group  # type: ignore[union-attr]
    assert group is not None

    async def scenario() -> tuple[list[int], list[int]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            created = await asyncio.gather(*(client.post(
                "/api/v1/consultations", json={"service_id": service, "question": "胸闷一周，活动后加重，想咨询"},
                headers={"Authorization": f"Bearer {patient}"}) for _ in range(24)))
            ids = [r.json()["consultation"]["public_id"] for r in created]
            claims = await asyncio.gather(*(client.post(
                f"/api/v1/consultations/{oid}/claim", headers={"Authorization": f"Bearer {doctor}"})
                for oid in ids + ids[:4]))  # four claimed twice: the second of each is refused
        return [r.status_code for r in created], [r.status_code for r in claims]
    try:
        created, claims = asyncio.run(scenario())
    finally:
        app.hot_routes.close()  # type: ignore[union-attr]
    assert created == [201] * 24
    assert sorted(claims) == [200] * 24 + [409] * 4
    assert group.batches < 48  # requests that waited shared a transaction
    with sqlite_container.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(ConsultationRow)
                                 .where(ConsultationRow.status == "claimed")) == 24
    off = sqlite_container.settings.model_copy(update={"http": HttpSettings(group_commit=False)})
    assert create_app(off, sqlite_container).hot_routes._group is None  # type: ignore[union-attr]


def test_group_commit_is_refused_with_postgresql(tmp_path: Path) -> None:
    pg = Settings(data_dir=tmp_path / "var", database_url="postgresql+psycopg://u@127.0.0.1:1/x",
                  secret_key=TEST_SECRET_KEY, http=HttpSettings(group_commit=True))
    with pytest.raises(ConfigurationError, match="group_commit"):
        create_app(pg)


def test_orm_work_in_a_batch_is_kept_or_undone_with_its_request(sqlite_container: Container,
                                                                committer: GroupCommitter) -> None:
    """A use case that touches ``uow.session`` gets a Session joined to the batch's connection: its
    flushed rows are part of its savepoint, kept on commit() and undone with it."""
    def orm(tag: str, fail: bool) -> Callable[[UnitOfWork], str]:
        def work(uow: UnitOfWork) -> str:
            with uow.core_first():
                uow.session.add(AuditRow(at=uow.clock.now(), actor="test", action=tag, entity_type="test",
                                         entity_id=tag, details={}))
                uow.session.flush()
                if fail:
                    raise Conflict("拒绝")
                uow.commit()
            return tag
        return work

    release, _blocker = _hold(committer)
    kept, undone, seen = (committer.submit(orm("orm-kept", False)), committer.submit(orm("orm-undone", True)),
                          committer.submit(lambda uow: ",".join(_actions(uow))))
    release.set()
    assert kept.result(10) == "orm-kept"
    with pytest.raises(Conflict):
        undone.result(10)
    assert seen.result(10) == "hold,orm-kept"  # a later request of the batch sees the earlier's kept work only
    assert _stored(sqlite_container) == ["hold", "orm-kept"]


def _actions(uow: UnitOfWork) -> list[str]:
    with uow.core_first():
        return sorted(uow.connection.scalars(select(AuditRow.action).where(AuditRow.actor == "test")))


def test_a_batch_that_cannot_start_fails_its_requests_and_the_thread_goes_on(sqlite_container: Container) -> None:
    """No request waits forever: the unit of work's factory failing (say, the schema check) fails the
    batch's requests, and the next batch runs."""
    calls = {"n": 0}

    def factory() -> UnitOfWork:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("数据库结构与程序版本不一致")
        return sqlite_container.uow()
    group = GroupCommitter(factory)
    try:
        with pytest.raises(RuntimeError, match="数据库结构"):
            group.submit(_write("first")).result(10)
        assert group.submit(_write("second")).result(10) == "second"
    finally:
        group.close()
    assert _stored(sqlite_container) == ["second"]
