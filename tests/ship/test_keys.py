"""Key options and key files: ROLE=VALUE lists, public keys from PEM or JSON files."""

from __future__ import annotations

import json

import pytest

from edgeship.core.errors import BadInput, UsageError
from edgeship.ship.keys import load_public_key, parse_role_values


def test_role_values():
    assert parse_role_values(["root=2", "timestamp=3"], "--threshold", int) == {"root": 2, "timestamp": 3}
    assert parse_role_values(["timestamp=0.5"], "--expiry-days", float) == {"timestamp": 0.5}
    assert parse_role_values([], "--keys", int) == {}
    with pytest.raises(UsageError, match="--keys 'admin=2': expected ROLE=VALUE with ROLE one of root, targets"):
        parse_role_values(["admin=2"], "--keys", int)
    with pytest.raises(UsageError, match="expected ROLE=VALUE"):
        parse_role_values(["root"], "--keys", int)
    with pytest.raises(UsageError, match="'two' is not a number"):
        parse_role_values(["root=two"], "--threshold", int)


def test_public_keys_from_pem_or_json(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner.generate_ed25519()
    as_json = tmp_path / "pub.json"
    as_json.write_text(json.dumps({"keyid": signer.public_key.keyid, **signer.public_key.to_dict()}))
    assert load_public_key(as_json) == signer.public_key
    pem = tmp_path / "pub.pem"
    crypto_key = serialization.load_pem_private_key(signer.private_bytes, None).public_key()
    pem.write_bytes(crypto_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    assert load_public_key(pem).keyval == signer.public_key.keyval
    (tmp_path / "junk.json").write_text("{}")
    for bad in (tmp_path / "junk.json", tmp_path / "missing.pem"):
        with pytest.raises(BadInput, match="not a PEM public key nor a key JSON"):
            load_public_key(bad)
