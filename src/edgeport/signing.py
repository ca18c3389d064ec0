"""Ed25519 signatures over a bundle's manifest (docs/design.md §7): authenticity, not only
integrity.

The manifest holds the sha256 of every artifact, external-data and golden file, so a detached
signature over the exact bytes of ``manifest.json`` covers the whole bundle. It lives beside it as
``manifest.json.sig`` (the raw 64-byte signature). Keys are PEM files: PKCS#8 for the private key,
SubjectPublicKeyInfo for the public one (what ``openssl genpkey -algorithm ed25519`` and
``openssl pkey -pubout`` write; libedgeport reads the same files with OpenSSL).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from edgeport.errors import CheckFailed, EdgeportError

log = logging.getLogger(__name__)

SIGNATURE_FILE = "manifest.json.sig"
SIGNATURE_BYTES = 64


class SignatureError(CheckFailed):
    """A public key was given and the bundle is unsigned or its signature does not verify."""


def generate_keypair(private_path: str | Path, public_path: str | Path) -> None:
    """Write a new Ed25519 key pair (private key readable by its owner only).

    Raises:
        EdgeportError: Either file exists already (keys are never overwritten).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise EdgeportError(
                f"{str(path)!r} exists",
                fix="choose a new file name; edgeport never overwrites keys",
            )
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(public)


def sign_manifest(manifest_bytes: bytes, private_key: str | Path) -> bytes:
    """The Ed25519 signature of ``manifest_bytes`` with the PEM private key file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = _load_key(private_key, private=True)
    assert isinstance(key, Ed25519PrivateKey)  # _load_key checked the type
    return key.sign(manifest_bytes)


def check_signature(root: Path, manifest_bytes: bytes, public_key: str | Path) -> None:
    """Refuse the bundle unless ``manifest.json.sig`` verifies ``manifest_bytes``.

    Raises:
        EdgeportError: The key file is not an Ed25519 public key (exit 2).
        SignatureError: No signature, or one that does not verify (exit 1).
    """
    from cryptography.exceptions import InvalidSignature

    key = _load_key(public_key, private=False)
    sig_path = root / SIGNATURE_FILE
    if not sig_path.is_file() or sig_path.is_symlink():
        raise SignatureError(
            f"bundle {str(root)!r} is not signed (no {SIGNATURE_FILE}) and a public key was "
            "given: refusing it",
            fix=f"ask its maker to sign it: edgeport sign {root} --key PRIVATE_KEY",
        )
    with open(sig_path, "rb") as f:
        signature = f.read(SIGNATURE_BYTES + 1)
    try:
        if len(signature) != SIGNATURE_BYTES:
            raise InvalidSignature
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise SignatureError(
            f"{SIGNATURE_FILE} does not verify against public key {str(public_key)!r}: the "
            "manifest changed after signing, or another key signed it",
            fix="do not run this bundle; get it again from its maker",
        ) from None
    log.info("signature of %s verified with %s", root, public_key)


def _load_key(path: str | Path, *, private: bool) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    kind = "private" if private else "public"
    form = "PKCS#8" if private else "SubjectPublicKeyInfo"
    problem = EdgeportError(
        f"{kind} key {str(path)!r} is not an Ed25519 {kind} key in PEM ({form})",
        fix="make a key pair with `edgeport keygen PREFIX` (or openssl genpkey -algorithm ed25519)",
    )
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (OSError, ValueError, TypeError) as exc:
        raise problem from exc
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise problem
    return key
