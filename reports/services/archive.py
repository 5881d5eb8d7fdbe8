"""报表归档: the scheduled jobs that build last month's, last quarter's and last year's reports and
store them in the designated location (OPS-3: data stored on time in the designated place).

Layout under the archive root::

    2026/10/monthly-2026-10.pdf  .xlsx  -metrics.csv  manifest.json
    2026/Q4/...     2026/annual/...

``manifest.json`` lists every file with its size and SHA-256 and the headline figures. A run builds
into a hidden staging folder beside the target, checks it, then exchanges the two folders in one
``renameat2(RENAME_EXCHANGE)`` on Linux, so a reader sees the old set or the new set, never a mix. The replaced manifest is kept as
``manifest.previous.json`` (and the one before it in ``history/``). Running twice is harmless: an
unchanged rebuild still replaces the set atomically; two concurrent runs for the same period are
serialised by an exclusive lock file (``O_CREAT|O_EXCL``) next to the folder; the loser skips.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.persistence.uow import UnitOfWork
from reports.domain.periods import Grain, Period, last_complete
from reports.domain.suggestions import DEFAULT_RULES, Rules
from reports.services.build import build, file_stem
from reports.services.collect import ReportKind, ReportSpec

JOB_PRINCIPAL = Principal("job:report_archive", "报表归档任务", Role.OPERATIONS)
STALE_LOCK_SECONDS = 3600
MANIFEST = "manifest.json"
PREVIOUS = "manifest.previous.json"
GRAINS = {Grain.MONTH: ReportKind.MONTHLY, Grain.QUARTER: ReportKind.QUARTERLY, Grain.YEAR: ReportKind.ANNUAL}


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    period: str
    directory: str
    files: int
    replaced: bool  # a previous set existed (its manifest kept as manifest.previous.json)
    skipped: bool  # another run held the lock


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def archive_period(uow: UnitOfWork, now: datetime, *, archive_root: Path, period: Period,
                   targets: Mapping[str, float] | None = None, rules: Rules = DEFAULT_RULES) -> ArchiveResult:
    """Build and archive the hospital report of ``period`` (monthly, quarterly or annual)."""
    target = archive_root / period.archive_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}.lock"
    if not _acquire(lock, now):
        return ArchiveResult(period.code, str(target), 0, False, True)
    staging = target.parent / f".{target.name}.staging"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        spec = ReportSpec(GRAINS[period.grain], period)
        built = build(uow, JOB_PRINCIPAL, spec, staging, targets=targets, rules=rules)
        files = sorted(p for p in staging.iterdir() if p.is_file())
        manifest = {
            "report": spec.kind.value, "period": period.code, "title": built.title,
            "generated_at": now.isoformat(), "pages": built.pages,
            "files": [{"name": p.name, "bytes": p.stat().st_size, "sha256": sha256(p)} for p in files],
            "headlines": {h.key: {"label": h.label, "value": h.value, "display": h.display} for h in built.headlines},
            "suggestions": list(built.suggestions),
        }
        replaced = (target / MANIFEST).is_file()
        if replaced:
            old = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
            history = [old]
            if (target / PREVIOUS).is_file():
                history.append(json.loads((target / PREVIOUS).read_text(encoding="utf-8")))
            (staging / PREVIOUS).write_text(json.dumps(old, ensure_ascii=False, indent=2), encoding="utf-8")
            hist_dir = staging / "history"
            hist_dir.mkdir()
            if (target / "history").is_dir():
                for p in (target / "history").iterdir():
                    shutil.copy2(p, hist_dir / p.name)
            (hist_dir / f"manifest-{_stamp(old.get('generated_at', ''))}.json").write_text(
                json.dumps(old, ensure_ascii=False, indent=2), encoding="utf-8")
        _write_atomic(staging / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
        verify(staging)
        _swap(staging, target)
        return ArchiveResult(period.code, str(target), len(files), replaced, False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.unlink(missing_ok=True)


def archive_last_month(uow: UnitOfWork, now: datetime, *, archive_root: Path, targets: Mapping[str, float] | None = None,
                       rules: Rules = DEFAULT_RULES) -> ArchiveResult:
    """Job: the month before ``now`` (run on the 1st at 08:00 Asia/Shanghai)."""
    return archive_period(uow, now, archive_root=archive_root, period=last_complete(now, Grain.MONTH), targets=targets, rules=rules)


def archive_last_quarter(uow: UnitOfWork, now: datetime, *, archive_root: Path, targets: Mapping[str, float] | None = None,
                         rules: Rules = DEFAULT_RULES) -> ArchiveResult:
    """Job: the quarter before ``now`` (1 Jan/Apr/Jul/Oct at 08:30)."""
    return archive_period(uow, now, archive_root=archive_root, period=last_complete(now, Grain.QUARTER), targets=targets, rules=rules)


def archive_last_year(uow: UnitOfWork, now: datetime, *, archive_root: Path, targets: Mapping[str, float] | None = None,
                      rules: Rules = DEFAULT_RULES) -> ArchiveResult:
    """Job: the year before ``now`` (2 January at 08:00)."""
    return archive_period(uow, now, archive_root=archive_root, period=last_complete(now, Grain.YEAR), targets=targets, rules=rules)


def verify(folder: Path) -> dict[str, object]:
    """Re-reads the manifest and checks every listed file's size and checksum; raises on a mismatch."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if not path.is_file() or path.stat().st_size != entry["bytes"] or sha256(path) != entry["sha256"]:
            raise RuntimeError(f"归档文件校验失败：{entry['name']}")
    return manifest


def _stamp(iso: str) -> str:
    return "".join(ch for ch in iso if ch.isdigit())[:14] or "unknown"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _swap(staging: Path, target: Path) -> None:
    """Puts the new set in place atomically: on Linux one ``renameat2(RENAME_EXCHANGE)`` swaps the
    two folders in a single step; elsewhere two renames (a reader in between finds no folder for an
    instant, never a mix of old and new files). The old set is then removed."""
    if not target.exists():
        os.replace(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old set
        return
    old = target.parent / f".{target.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _acquire(lock: Path, now: datetime) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            held_since = datetime.fromisoformat(lock.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return False
        if (now - held_since).total_seconds() < STALE_LOCK_SECONDS:
            return False
        lock.unlink(missing_ok=True)  # a crashed run's lock
        return _acquire(lock, now)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(now.isoformat())
    return True


__all__ = ["ArchiveResult", "archive_last_month", "archive_last_quarter", "archive_last_year", "archive_period",
           "file_stem", "verify"]
