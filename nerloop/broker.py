"""The embedded platform's broker: kombu's filesystem transport, with messages written whole.

kombu writes a message straight into its final ``*.msg`` name, so a worker polling the folder
can take the file before its bytes are in it: it reads nothing, fails to parse it, and the
message is lost (a live-worker test saw forty documents never predicted). Here a message is
written under a name no worker looks at, then renamed, which is atomic on one filesystem: a
worker sees a whole message or none. Settings select it (CELERY_BROKER_TRANSPORT) when no
REDIS_URL is set.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # kombu's own name (time first, so the folder sorts in arrival order)
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        handle, partial = tempfile.mkstemp(dir=self.data_folder_out, prefix=".", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(dumps(payload).encode("utf-8"))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc
        finally:
            if os.path.exists(partial):
                os.remove(partial)


class Transport(filesystem.Transport):
    Channel = Channel
