"""The development broker itself: start, answer, stop, restart with its data."""

import uuid
from pathlib import Path

import pytest

from kubeopera.deploy import kafka as broker_module
from kubeopera.deploy.kafka import Broker, free_port

pytestmark = pytest.mark.integration  # starts its own Kafka broker


def test_a_cluster_id_starting_with_a_dash_still_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Base64 ids start with "-" one time in 64; the storage tool must not read it as an
    option (this once made the broker fail to start at random)."""
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))
    monkeypatch.setattr(broker_module.uuid, "uuid4", lambda: dashed)
    broker = Broker(state=tmp_path, port=free_port())
    broker.up()
    try:
        assert broker.answers()
        assert "cluster.id=-" in (tmp_path / "data" / "meta.properties").read_text()
        broker.down()
        assert broker.pid() is None and not broker.answers()
        broker.up()  # formatted once; restarts keep the data
        assert broker.status().startswith("running")
    finally:
        broker.down()
