"""The embedded broker (nerloop.broker): a worker never sees half a message."""

import json
import os
import uuid
from pathlib import Path

from kombu import Connection


def test_filesystem_broker_messages_appear_whole(tmp_path, monkeypatch):
    """kombu wrote straight into the ``*.msg`` name a worker polls for, so a worker could take
    an empty file, fail to parse it and lose the message; the message now gets that name only
    once its bytes are all written."""
    (tmp_path / "control").mkdir()
    seen = []
    rename = os.replace

    def watched(source, target):
        seen.append((sorted(os.listdir(tmp_path)), Path(source).read_bytes()))
        rename(source, target)

    monkeypatch.setattr("nerloop.broker.os.replace", watched)
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
    }
    with Connection(
        "filesystem://localhost/", transport="nerloop.broker:Transport", transport_options=options
    ) as connection:
        # a queue name of its own: kombu keeps bindings per process, and one bound by another
        # test (with other folders) would route this message nowhere
        queue = connection.SimpleQueue(f"test-{uuid.uuid4().hex}")
        queue.put({"document": 7})
        [(listing, written)] = seen
        assert not [name for name in listing if name.endswith(".msg")]  # nothing to take yet
        assert json.loads(written)["body"]
        message = queue.get(timeout=2)
        assert message.payload == {"document": 7}
        message.ack()
        queue.close()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]
