"""Run generators in child processes, so that generating rows (Python, one
core each) overlaps writing them (the driver, in this process).

Threads do not help here: generation holds the GIL, and contention made a
threaded pipeline slower than a sequential one. Items arrive in each
producer's order; producers interleave as they finish work, which is safe
because generated rows carry their own ids and foreign keys are checked at
commit. Where ``fork`` is unavailable the producers run here, one by one.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import TypeVar

T = TypeVar("T")
_ITEM, _DONE, _FAILED = "item", "done", "failed"


def _child(produce: Callable[[], Iterator[T]], out: Connection) -> None:
    try:
        for item in produce():
            out.send((_ITEM, item))
        out.send((_DONE, None))
    except BaseException as error:  # noqa: BLE001 - reported to the parent without locals or data
        out.send((_FAILED, f"{type(error).__name__}: {traceback.format_exception_only(error)[-1].strip()}"))
    finally:
        out.close()


def in_child_processes(producers: Sequence[Callable[[], Iterator[T]]]) -> Iterator[T]:
    """Yield what the producers yield, each computed in a forked child (items must pickle)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        for produce in producers:
            yield from produce()
        return
    context = multiprocessing.get_context("fork")
    children, pending = [], []
    try:
        for number, produce in enumerate(producers):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_child, args=(produce, send), name=f"generator-{number}", daemon=True)
            child.start()
            send.close()
            children.append(child)
            pending.append(receive)
        while pending:
            for receive in wait(pending):
                try:
                    kind, payload = receive.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise RuntimeError("数据生成进程意外退出") from None
                if kind == _ITEM:
                    yield payload
                elif kind == _DONE:
                    pending.remove(receive)
                    receive.close()  # type: ignore[union-attr]
                else:
                    raise RuntimeError(f"数据生成进程出错：{payload}")
    finally:
        for receive in pending:
            receive.close()
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
