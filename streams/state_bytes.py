"""State as bytes: a JSON header, then a binary body, behind the header's length.

Both the pipeline's slots (clock header, processor state body) and the cost windows
(header of closed hours and seen scrapes, open rows as Arrow IPC) are saved this way.

>>> unpack(pack({"offset": 7}, b"rows"))
({'offset': 7}, b'rows')
"""

import json
from typing import Any


def pack(header: dict[str, Any], body: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(4, "big") + encoded + body


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    size = int.from_bytes(data[:4], "big")
    header: dict[str, Any] = json.loads(data[4 : 4 + size])
    return header, data[4 + size :]
