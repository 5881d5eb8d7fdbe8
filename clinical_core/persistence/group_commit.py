"""Group commit: many short writing units of work, one SQLite transaction.

SQLite has one writer at a time, so the consultation hot routes run their use cases on one thread
(``clinical_core.api.fast_path``). Each request used to pay a whole transaction of its own:
``BEGIN IMMEDIATE`` (file locks, the WAL index), a commit that appends every page it touched to the
WAL (the same table and index leaves, request after request), now and then a checkpoint with its
``fsync`` on that one thread, and a pooled connection's check-out and return. Under load that was
about a fifth of the server's CPU per request (docs/BENCHMARKS.md, "Consultation API throughput").

``GroupCommitter`` is that one thread, doing the same work in batches: it takes every request
waiting in its queue (up to ``max_batch``), begins **one** transaction, runs each request's work in
a unit of work of its own (``_Member``) that sits in a savepoint, and commits once. Each request
keeps the semantics of its own transaction:

- **All or nothing per request.** ``commit()`` releases the request's savepoint (its work is part of
  the batch) and opens a new one; leaving the ``with uow:`` block without committing rolls back to
  the savepoint, so a refused request (a domain error, a conflict) undoes exactly its own writes.
- **Nothing is answered before it is durable.** Every request of a batch gets its result (or its
  error) only after the batch's ``COMMIT``; if that fails, every request of the batch fails with
  that error and nothing of the batch is stored.
- **Side effects after the commit.** ``after_commit`` callbacks run after the batch's commit, in
  request order; a callback's exception becomes that request's error, as it would in a plain unit
  of work, whose ``commit()`` raises it.
- **Isolation as with one writer.** The requests of a batch run one after another on one
  connection, each seeing the work of the ones before it, exactly as they would with one thread
  committing each in turn; a claim that loses to an earlier claim in the same batch is refused.
- A statement error that ends SQLite's transaction itself (``SQLITE_FULL``, an I/O error) loses the
  work of the requests before it: they fail with that error, and the requests after it run in a
  new batch.

The savepoints are issued on the driver's connection (``SAVEPOINT`` / ``RELEASE`` / ``ROLLBACK
TO``: a few microseconds each); SQLAlchemy sees one ordinary transaction.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from clinical_core.persistence.uow import UnitOfWork

T = TypeVar("T")
_SAVEPOINT = "group_member"


class _Job(Generic[T]):
    __slots__ = ("callbacks", "error", "future", "result", "work")

    def __init__(self, work: Callable[[UnitOfWork], T]) -> None:
        self.work = work
        self.future: Future[T] = Future()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.callbacks: list[Callable[[], None]] = []


class GroupCommitter:
    """One thread running submitted work in shared SQLite transactions (see the module docstring).

    ``submit(work)`` returns a ``concurrent.futures.Future`` of ``work(uow)``; ``uow`` is a unit of
    work on the batch's connection, used exactly like the one ``uow_factory()`` returns."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], *, max_batch: int = 32,
                 name: str = "group-commit") -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._uow_factory = uow_factory
        self._max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.batches = 0  # how many transactions it committed or tried (for tests and benchmarks)

    def submit(self, work: Callable[[UnitOfWork], T]) -> Future[T]:
        job: _Job[T] = _Job(work)
        with self._lock:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(job)
        return job.future

    def close(self, timeout: float | None = 30) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    # --- the thread ---

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch: list[_Job[Any]] = [job]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            running = [j for j in batch if j.future.set_running_or_notify_cancel()]
            try:
                self._run_batch(running)
            except BaseException as error:  # noqa: BLE001 - the thread must go on; no request may wait forever
                for j in running:
                    if not j.future.done():
                        j.future.set_exception(error)
            if stop:
                return

    def _run_batch(self, jobs: list[_Job[Any]]) -> None:
        if not jobs:
            return
        self.batches += 1
        done: list[_Job[Any]] = []
        rest: list[_Job[Any]] = []
        try:
            base = self._uow_factory()
            with base.engine.connect() as connection:
                if base.engine.dialect.name == "sqlite":
                    connection.execution_options(sqlite_begin="IMMEDIATE")  # the write lock, as a unit of work
                connection.begin()
                driver = connection.connection.driver_connection
                for index, job in enumerate(jobs):
                    member = _Member(base, connection)
                    try:
                        job.result = job.work(member)
                    except BaseException as error:  # noqa: BLE001 - handed to the request that raised it
                        job.error = error
                    job.callbacks = member.committed_callbacks
                    done.append(job)
                    if not driver.in_transaction:
                        # SQLite ended the transaction itself (a full disk, an I/O error): the work of
                        # the requests so far is lost; the ones not yet run get a batch of their own.
                        rest = jobs[index + 1:]
                        raise _TransactionLost(job.error)
                connection.commit()
        except BaseException as error:  # noqa: BLE001 - every request whose work it lost learns it
            cause = error.error if isinstance(error, _TransactionLost) and error.error is not None else error
            kept = {id(job) for job in rest}
            for job in jobs:
                if id(job) not in kept:
                    job.future.set_exception(cause)
            self._run_batch(rest)
            return
        for job in done:
            for callback in job.callbacks:
                try:
                    callback()
                except Exception as error:  # noqa: BLE001 - as ``UnitOfWork.commit`` raises it to its caller
                    if job.error is None:
                        job.error = error
            if job.error is not None:
                job.future.set_exception(job.error)
            else:
                job.future.set_result(job.result)


class _TransactionLost(Exception):
    def __init__(self, error: BaseException | None) -> None:
        super().__init__("the batch's transaction ended")
        self.error = error


class _Member(UnitOfWork):
    """A unit of work inside a batch: its transaction is a savepoint of the batch's transaction."""

    def __init__(self, base: UnitOfWork, connection: Connection) -> None:
        super().__init__(base.engine, base.clock, base.vault, base._factory)
        self._batch_connection = connection
        self._driver = connection.connection.driver_connection
        self.committed_callbacks: list[Callable[[], None]] = []

    def _begin(self) -> None:
        self._bare = self._connection = self._batch_connection
        self._driver.execute(f"SAVEPOINT {_SAVEPOINT}")

    def _end(self) -> None:
        try:
            if self._session is not None:
                self._session.close()  # a session joined to the batch's connection: leaves its transaction alone
        finally:
            self._read_only = self._core_first = False
            self._connection = self._bare = None
            if self._driver.in_transaction:
                # Undo what was not committed (nothing, after a commit as the last step), end the savepoint.
                self._driver.execute(f"ROLLBACK TO {_SAVEPOINT}")
                self._driver.execute(f"RELEASE {_SAVEPOINT}")

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        if self._session is not None:
            self._session.flush()
        # The work so far becomes part of the batch; what follows in the block gets a savepoint of its own.
        self._driver.execute(f"RELEASE {_SAVEPOINT}")
        self._driver.execute(f"SAVEPOINT {_SAVEPOINT}")
        self.committed_callbacks.extend(self._after_commit)
        self._after_commit = []
