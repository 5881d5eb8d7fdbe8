"""Recording a flush of results (``record_many``: executemany on SQLite, one ``UPDATE … FROM
unnest(…)`` per outcome on PostgreSQL) writes each outcome on its own row, and only on rows this
claim still owns in a state the transition allows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.adapters.sandbox_server import SandboxServer
from campaigns.persistence.pushes import DeliveryRow
from campaigns.services import delivery, pushes
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.wiring import Container
from tests.support.pushes import add_followers, synced_sandbox

OPS = Principal("ops:test", "ops", Role.OPERATIONS)
NOTICE = {"template_id": "tpl_sandbox_notice", "fields": {"first": "复诊提醒"}}


@pytest.fixture
def wx(container: Container) -> Iterator[tuple[SandboxServer, WeChatPushSender]]:
    with synced_sandbox(container) as wx:
        yield wx


def _rows(container: Container) -> dict[int, DeliveryRow]:
    with container.uow() as uow:
        rows = {r.id: r for r in uow.session.scalars(select(DeliveryRow))}
        uow.session.expunge_all()
        return rows


def test_a_flush_records_every_outcome_only_on_rows_this_claim_owns(container: Container, wx) -> None:  # type: ignore[no-untyped-def]
    server, sender = wx
    add_followers(container, server, 7)
    seg = pushes.create_segment(container.uow(), OPS, "全部", {})
    view = pushes.create_push(container.uow(), OPS, name="记录", kind="template", segment=seg.name, variants={"A": NOTICE})
    pushes.schedule(container.uow(), OPS, view.public_id, None, pushes.SendingRules())
    pushes.dispatch_due(container.uow(), container.clock.now(), api=sender)
    calls = delivery.claim(container.uow(), "w1", limit=10)
    assert len(calls) == 7
    sent, failed, lost, retry, gave_up, stolen, settled = calls
    with container.uow() as uow:  # another claim took one row over; another row was settled already
        uow.session.execute(update(DeliveryRow).where(DeliveryRow.id == stolen.rows[0][0]).values(claim="other"))
        uow.session.execute(update(DeliveryRow).where(DeliveryRow.id == settled.rows[0][0]).values(state="failed"))
        uow.commit()
    gave_up = delivery.Call(gave_up.push_id, gave_up.push_public_id, gave_up.kind, gave_up.variant, gave_up.claim,
                            gave_up.rows, content=gave_up.content, attempts=99)
    outcomes = delivery.record_many(container.uow(), [
        (sent, 0, "m-1", None), (failed, 43004, None, None), (lost, None, None, None), (retry, -1, None, None),
        (gave_up, -1, None, None), (stolen, 0, "m-2", None), (settled, 0, "m-3", None)], delays=(30,))
    assert [o.value for o in outcomes] == ["sent", "failed", "unknown", "retry", "failed", "sent", "sent"]
    rows = _rows(container)
    named = {"sent": sent, "failed": failed, "lost": lost, "retry": retry, "gave_up": gave_up, "stolen": stolen,
             "settled": settled}
    row = {name: rows[call.rows[0][0]] for name, call in named.items()}
    assert (row["sent"].state, row["sent"].msgid, row["sent"].sent_at) == ("sent", "m-1", container.clock.now())
    assert (row["failed"].state, row["failed"].error) == ("failed", "wx:43004")
    assert (row["lost"].state, row["lost"].error) == ("unknown", "no_answer")
    assert (row["retry"].state, row["retry"].claim, row["retry"].error) == ("pending", None, "wx:-1")
    assert row["retry"].next_attempt_at == container.clock.now() + timedelta(seconds=30)
    assert (row["gave_up"].state, row["gave_up"].error) == ("failed", "wx:-1:gave_up")
    assert (row["stolen"].state, row["stolen"].msgid) == ("sending", None)  # not this claim's row any more
    assert (row["settled"].state, row["settled"].msgid) == ("failed", None)  # "sent" may not follow "failed"
