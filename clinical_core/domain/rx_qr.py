"""处方二维码: what a printed prescription's QR code carries, so a store can check it offline.

No personal data: the prescription id and version, the SHA-256 of its
canonical form (what the doctor signed), and for each signer the certificate
serial, the SHA-256 of what was signed and the signature itself. With the
hospital's CA certificate and the signers' (public) certificates a store
verifies both signatures without calling us; online, the digest is also
compared with the prescription as stored now, so a change after printing shows.

Text form: ``RX1.`` + base64url(JSON with sorted keys), uppercase-free of
spaces so it fits a byte-mode QR code of moderate size.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from clinical_core.domain.errors import InvalidInput

PREFIX = "RX1."


@dataclass(frozen=True, slots=True)
class SignatureRef:
    role: str  # doctor | pharmacist
    serial: str  # certificate serial (hex)
    digest: bytes  # SHA-256 of the signed data
    signature: bytes  # DER ECDSA signature
    signed_at: str  # ISO 8601 UTC


@dataclass(frozen=True, slots=True)
class RxQr:
    prescription_id: str
    version: int
    canonical_sha256: bytes
    signatures: tuple[SignatureRef, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(qr: RxQr) -> str:
    body = {"id": qr.prescription_id, "v": qr.version, "h": _b64(qr.canonical_sha256),
            "s": [[s.role[0], s.serial, _b64(s.digest), _b64(s.signature), s.signed_at] for s in qr.signatures]}
    return PREFIX + _b64(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def decode(text: str) -> RxQr:
    if not text.startswith(PREFIX):
        raise InvalidInput("不是本院处方二维码", field="qr")
    try:
        body = json.loads(_unb64(text[len(PREFIX):].strip()))
        roles = {"d": "doctor", "p": "pharmacist"}
        signatures = tuple(SignatureRef(roles[r], str(serial), _unb64(digest), _unb64(sig), str(at))
                           for r, serial, digest, sig, at in body["s"])
        qr = RxQr(str(body["id"]), int(body["v"]), _unb64(body["h"]), signatures)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput("处方二维码内容无法解析", field="qr") from exc
    if len(qr.canonical_sha256) != 32 or any(len(s.digest) != 32 for s in qr.signatures):
        raise InvalidInput("处方二维码摘要长度不正确", field="qr")
    return qr
