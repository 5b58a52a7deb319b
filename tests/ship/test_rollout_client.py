"""The rollout client: clients from token files, and one-line errors for an unreachable service or
a refused token."""

from __future__ import annotations

import re

import pytest

from edgeship.core.errors import BadInput
from edgeship.ship.rollout.client import RolloutClient, connect
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.rollout.tokens import AccessTokens, read_token, write_token


def test_connect_reads_the_token_file(tmp_path):
    token_file = write_token(tmp_path / "admin.token")
    client = connect("http://127.0.0.1:8081/", token_file, timeout=3)
    assert client.url == "http://127.0.0.1:8081" and client.token == read_token(token_file)
    assert connect("http://127.0.0.1:8081").token is None
    with pytest.raises(BadInput, match="rollout-token"):
        connect("http://127.0.0.1:8081", tmp_path / "missing.token")


def test_an_unreachable_service_is_one_line():
    client = RolloutClient("http://127.0.0.1:9", timeout=2)  # nothing listens on port 9
    with pytest.raises(BadInput, match=re.escape("cannot reach the rollout service at http://127.0.0.1:9 (")) as exc:
        client.status()
    assert "\n" not in str(exc.value)


def test_a_refused_token_names_the_fix(tmp_path):
    admin = read_token(write_token(tmp_path / "admin.token"))
    with RolloutServer(tmp_path / "r.db", tokens=AccessTokens(admin=admin, device=admin[::-1])) as service:
        assert RolloutClient(service.url).health()  # health needs no token
        with pytest.raises(BadInput, match="--token-file"):
            RolloutClient(service.url, token="y" * 40).status()
        assert connect(service.url, tmp_path / "admin.token").status()["rollouts"] == []
