"""Attachments on the local disk, content-addressed: ``<root>/ab/cd/<sha256>``.

A write goes to a temporary file in the same directory and is renamed into
place, so a reader never sees half a file and two writers of the same
content cannot corrupt it. Files are written before the database row that
names them commits: a rolled-back message leaves at most an unreferenced
blob, never a row pointing at nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from clinical_core.domain.errors import InvalidInput, NotFound
from clinical_core.ports.attachments import StoredBlob

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileAttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise InvalidInput("附件标识格式不正确", field="sha256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return StoredBlob(digest, len(data))

    def get(self, sha256: str) -> bytes:
        path = self._path(sha256)
        if not path.is_file():
            raise NotFound(f"未找到附件 {sha256[:12]}")
        return path.read_bytes()
