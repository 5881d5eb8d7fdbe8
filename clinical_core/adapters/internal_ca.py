"""内部 CA: the hospital's own certificate authority (ECDSA P-256, X.509 via
``cryptography``). The CA key and each clinician's signing key live under
``<data_dir>/ca`` (files mode 0600); certificates are public and also kept in
the database. Verification checks the chain to this CA, the validity period
at signing time and the signature itself."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from clinical_core.domain.errors import Conflict, NotFound, RuleViolation
from clinical_core.ports.signer import CertificateSubject, IssuedCertificate

CA_YEARS = 10
STAFF_YEARS = 2


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class InternalCa:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def _ca_key_path(self) -> Path:
        return self.root / "ca.key"

    @property
    def _ca_cert_path(self) -> Path:
        return self.root / "ca.crt"

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if not self._ca_cert_path.is_file():
            raise NotFound("医院 CA 尚未初始化", hint="请先运行 opsctl ca init")
        key = serialization.load_pem_private_key(self._ca_key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(self._ca_cert_path.read_bytes())

    def init_authority(self, organisation: str, now: datetime) -> str:
        if self._ca_cert_path.exists():
            raise Conflict("医院 CA 已存在，不能重复初始化")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} 内部 CA")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + timedelta(days=365 * CA_YEARS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                               critical=True)
                .sign(key, hashes.SHA256()))
        _write_private(self._ca_key_path, _pem_key(key))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        self._ca_cert_path.write_bytes(pem)
        return pem.decode()

    def issue(self, staff_id: str, name: str, role: str, now: datetime) -> IssuedCertificate:
        ca_key, ca_cert = self._ca()
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.USER_ID, staff_id),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)])
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(serial).not_valid_before(now)
                .not_valid_after(now + timedelta(days=365 * STAFF_YEARS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                               critical=True)
                .sign(ca_key, hashes.SHA256()))
        _write_private(self.root / "keys" / f"{staff_id}.{serial:x}.pem", _pem_key(key))
        return IssuedCertificate(f"{serial:x}", cert.public_bytes(serialization.Encoding.PEM).decode(),
                                 cert.not_valid_before_utc, cert.not_valid_after_utc)

    def sign(self, staff_id: str, serial: str, data: bytes) -> bytes:
        path = self.root / "keys" / f"{staff_id}.{serial}.pem"
        if not path.is_file():
            raise NotFound("未找到该证书的签名私钥", hint="请用 opsctl staff issue-cert 重新签发证书")
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    def verify(self, certificate_pem: str, data: bytes, signature: bytes, at: datetime) -> CertificateSubject:
        return self._verify(certificate_pem, signature, at, ec.ECDSA(hashes.SHA256()), data)

    def verify_digest(self, certificate_pem: str, digest: bytes, signature: bytes, at: datetime) -> CertificateSubject:
        """Like ``verify``, given only the SHA-256 of the signed data (what a printed QR code carries)."""
        if len(digest) != 32:
            raise RuleViolation("R41", "签名摘要长度不正确")
        return self._verify(certificate_pem, signature, at, ec.ECDSA(Prehashed(hashes.SHA256())), digest)

    def _verify(self, certificate_pem: str, signature: bytes, at: datetime, algorithm: ec.ECDSA,
                data: bytes) -> CertificateSubject:
        _, ca_cert = self._ca()
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        public = cert.public_key()
        try:
            ca_public = ca_cert.public_key()
            assert isinstance(ca_public, ec.EllipticCurvePublicKey) and isinstance(public, ec.EllipticCurvePublicKey)
            assert cert.signature_hash_algorithm is not None
            ca_public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        except InvalidSignature as exc:
            raise RuleViolation("R41", "签名证书不是本院 CA 签发") from exc
        if cert.issuer != ca_cert.subject:
            raise RuleViolation("R41", "签名证书不是本院 CA 签发")
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise RuleViolation("R41", "签名时证书不在有效期内")
        try:
            public.verify(signature, data, algorithm)
        except InvalidSignature as exc:
            raise RuleViolation("R41", "处方内容与签名不符：签名后被修改") from exc

        def attr(oid: x509.ObjectIdentifier) -> str:
            values = cert.subject.get_attributes_for_oid(oid)
            return str(values[0].value) if values else ""

        return CertificateSubject(attr(NameOID.USER_ID), attr(NameOID.COMMON_NAME),
                                  attr(NameOID.ORGANIZATIONAL_UNIT_NAME), f"{cert.serial_number:x}",
                                  cert.not_valid_before_utc, cert.not_valid_after_utc)
