"""Migration 0014 turns the recorded-but-never-sent announcements into the new shape: a follower
announcement had no push, so it is withdrawn ("legacy"); a community group's becomes an open
task; both get a public id and the start time they announced."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from opsctl import db
from opsctl.wiring import Container

REVISION = "0014_live_announcements"


def _migrate(container: Container, target: str, down: bool) -> None:
    config = db.alembic_config(container.engine)
    with container.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


def test_existing_announcements_are_carried_over(container: Container) -> None:
    _migrate(container, "0013_pushes", down=True)
    with container.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO live_sessions (id, public_id, platform, account, title, planned_start, planned_minutes, plan, "
            "status, created_by, created_at) VALUES (1, 'liv_old', 'douyin', '深大附院心内科', '高血压直播答疑', "
            "'2026-11-05 12:00:00.000000', 60, '一、家庭自测血压；二、降压药；三、答疑', 'scheduled', 'ops', "
            "'2026-11-01 02:00:00.000000')"))
        conn.execute(text(
            "INSERT INTO live_announcements (id, session_id, target, text, created_at) VALUES "
            "(1, 1, 'followers', '直播预告', '2026-11-02 02:00:00.000000'), "
            "(2, 1, 'grp_x', '各位群友好', '2026-11-02 02:00:00.000000')"))
    _migrate(container, "head", down=False)
    assert db.current_revision(container.engine) == db.head_revision(container.engine)
    with container.engine.connect() as conn:
        rows = conn.execute(text("SELECT public_id, target, status, withdraw_reason, purpose, created_by, "
                                 "announced_start IS NOT NULL FROM live_announcements ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("ann_legacy1", "followers", "withdrawn", "legacy", "announce", "migration:0014", True),
        ("ann_legacy2", "grp_x", "open", None, "announce", "migration:0014", True)]
    _migrate(container, "0013_pushes", down=True)  # and back down
    _migrate(container, "head", down=False)
