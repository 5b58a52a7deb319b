"""Access tokens: private random files never overwritten, read back strictly; an open service is
refused off loopback."""

from __future__ import annotations

import stat

import pytest

from edgeship.core.errors import BadInput
from edgeship.ship.rollout.tokens import AccessTokens, check_exposure, read_token, tokens_from_files, write_token


@pytest.fixture
def tokens(tmp_path):
    return write_token(tmp_path / "admin.token"), write_token(tmp_path / "device.token")


def test_token_files_are_private_random_and_never_overwritten(tmp_path, tokens):
    admin, device = tokens
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert read_token(admin) != read_token(device) and len(read_token(admin)) >= 32
    with pytest.raises(BadInput, match="not overwritten"):
        write_token(admin)
    (tmp_path / "empty.token").write_text("\n")
    with pytest.raises(BadInput, match="no usable token"):
        read_token(tmp_path / "empty.token")
    with pytest.raises(BadInput, match="rollout-token"):
        read_token(tmp_path / "missing.token")


def test_tokens_from_files_and_open_roles(tokens):
    admin, device = tokens
    both = tokens_from_files(admin, device)
    assert both == AccessTokens(read_token(admin), read_token(device))
    assert not both.open and both.open_roles == ()
    operators_only = tokens_from_files(admin_file=admin)
    assert operators_only.open and operators_only.open_roles == ("devices",)
    assert tokens_from_files().open_roles == ("operators", "devices")


def test_open_service_is_refused_off_loopback():
    check_exposure("127.0.0.1", AccessTokens(), insecure=False)  # development: allowed
    with pytest.raises(BadInput, match="admin-token-file"):
        check_exposure("0.0.0.0", AccessTokens(admin="a" * 20), insecure=False)
    check_exposure("0.0.0.0", AccessTokens(admin="a" * 20, device="d" * 20), insecure=False)
    check_exposure("0.0.0.0", AccessTokens(), insecure=True)
