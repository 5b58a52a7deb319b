"""Bounded input: the rollout service refuses request bodies over its bound (413), over-long or
malformed fields such as a 2 MB device id (422), a device token speaking for more devices than
allowed (403) and more reports per device per minute than allowed (429), each with a one-line reason."""

from __future__ import annotations

import json

import pytest
import urllib3
from telemetry_fakes import aggregate, report

from edgeship.core.errors import BadInput
from edgeship.ship.outcome import Outcome
from edgeship.ship.rollout.client import RolloutClient
from edgeship.ship.rollout.limits import ServiceLimits
from edgeship.ship.rollout.service import RolloutServer
from edgeship.ship.rollout.tokens import AccessTokens

ADMIN, DEVICE = "a" * 32, "d" * 32


@pytest.fixture
def service(tmp_path):
    limits = ServiceLimits(max_body_bytes=200_000, max_devices_per_token=3, reports_per_minute=5,
                           telemetry_per_minute=2)
    with RolloutServer(tmp_path / "r.db", tokens=AccessTokens(ADMIN, DEVICE), limits=limits) as s:
        yield s


def _post(url: str, path: str, body: bytes, token: str = DEVICE, chunked: bool = False) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    data = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    r = urllib3.PoolManager().urlopen("POST", url + path, body=data, headers=headers, chunked=chunked, retries=False,
                                      timeout=10)
    return r.status, json.loads(r.data or b"null")


def test_a_2mb_device_id_is_refused_not_stored(service):
    body = json.dumps(Outcome("updated", device_id="x" * 2_000_000, target="t").to_dict()).encode()
    status, reply = _post(service.url, "/v1/reports", body)
    assert status == 413 and "over 200000 bytes" in reply["detail"]
    status, reply = _post(service.url, "/v1/reports", body, chunked=True)  # no Content-Length to trust
    assert status == 413
    body = json.dumps(Outcome("updated", device_id="x" * 1000, target="t").to_dict()).encode()
    status, reply = _post(service.url, "/v1/reports", body)
    assert status == 422 and reply["detail"] == "device_id of 1000 characters: at most 128"
    status, reply = _post(service.url, "/v1/reports", json.dumps({"outcome": "updated", "device_id": "a b"}).encode())
    assert status == 422 and "letters, digits" in reply["detail"]
    status, reply = _post(service.url, "/v1/reports", json.dumps(
        {"outcome": "updated", "device_id": "d-1", "target": "t" * 5000}).encode())
    assert status == 422 and reply["detail"].startswith("target of 5000 characters")
    assert service.store.status()["devices"] == []  # nothing was stored


def test_a_device_token_speaks_for_a_bounded_number_of_devices(service):
    client = RolloutClient(service.url, token=DEVICE)
    for i in range(3):
        client.assign(f"dev-{i}", "m", "stable", None)
    client.assign("dev-0", "m", "stable", None)  # a known device is always let in
    with pytest.raises(BadInput, match=r"speaks for 3 devices .*HTTP 403"):
        client.assign("dev-3", "m", "stable", None)
    RolloutClient(service.url, token=ADMIN).assign("dev-3", "m", "stable", None)  # operators are not bound


def test_reports_per_device_per_minute(service):
    client = RolloutClient(service.url, token=DEVICE)
    for _ in range(5):
        client.report(Outcome("up_to_date", device_id="dev-1"))
    with pytest.raises(BadInput, match=r"at most 5 a minute per device.*HTTP 429"):
        client.report(Outcome("up_to_date", device_id="dev-1"))
    client.report(Outcome("up_to_date", device_id="dev-2"))  # another device has its own budget
    r = urllib3.request("POST", service.url + "/v1/reports", body=json.dumps({"outcome": "x", "device_id": "dev-1"}),
                        headers={"Authorization": f"Bearer {DEVICE}", "Content-Type": "application/json"})
    assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60


def test_telemetry_batches_are_bounded_and_validated(service):
    client = RolloutClient(service.url, token=DEVICE)
    good = report("dev-1", aggregate("models/m/1/m.onnx", n=12))
    assert client.telemetry([good]) == {"accepted": 1, "duplicates": 0}
    with pytest.raises(BadInput, match="same device"):
        client.telemetry([good, report("dev-2", aggregate("models/m/1/m.onnx", n=12))])
    broken = json.loads(json.dumps(good))
    broken["latency_ms"]["count"] += 7
    with pytest.raises(BadInput, match=r"report 0: sketch: bucket counts do not add up.*HTTP 422"):
        client.telemetry([broken])
    with pytest.raises(BadInput, match="at most 100"):
        client.telemetry([good] * 101)
    with pytest.raises(BadInput, match="429"):  # the second request this minute is the limit
        client.telemetry([report("dev-1", aggregate("models/m/1/m.onnx", n=12))])
        client.telemetry([report("dev-1", aggregate("models/m/1/m.onnx", n=12))])
