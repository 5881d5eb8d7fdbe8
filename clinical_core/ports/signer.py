"""Port for electronic signatures (电子签名, R03/R10/R23): an internal hospital
CA today (``clinical_core.adapters.internal_ca``); a real CA service or SM2
signing device can replace it behind the same interface."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    serial: str
    certificate_pem: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class CertificateSubject:
    staff_id: str
    name: str
    role: str
    serial: str
    not_before: datetime
    not_after: datetime


class Signer(Protocol):
    def init_authority(self, organisation: str, now: datetime) -> str:
        """Create the CA; returns its certificate (PEM). Refuses if one exists."""
        ...

    def issue(self, staff_id: str, name: str, role: str, now: datetime) -> IssuedCertificate: ...

    def sign(self, staff_id: str, serial: str, data: bytes) -> bytes: ...

    def verify(self, certificate_pem: str, data: bytes, signature: bytes, at: datetime) -> CertificateSubject:
        """Check the certificate chain, validity at ``at`` and the signature; raises ``RuleViolation('R41')``."""
        ...

    def verify_digest(self, certificate_pem: str, digest: bytes, signature: bytes, at: datetime) -> CertificateSubject:
        """``verify`` given only the SHA-256 digest of the signed data (offline checks of a printed QR code)."""
        ...
