"""The pipe between the sharded SIP engine and its worker processes: length-prefixed pickles.

Both ends are this package in processes the parent started itself, over an anonymous pipe, so
pickling the engine contract's frozen dataclasses is safe and needs no schema. A frame is a 4-byte
big-endian length and a pickled tuple whose first item names the message:

parent -> worker: ("config", WorkerConfig), ("run", CallbackSpec), ("hangup", id, EndedBy), ("stop",)
worker -> parent: ("ready",), ("error", text), ("progress", ProgressEvent),
                  ("outcome", id, CallOutcome), ("failed", id, text), ("stopped",)
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from webcallback.config import LogSettings, SipSettings

_HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024


@dataclass(frozen=True)
class WorkerConfig:
    settings: SipSettings  # listen is this worker's own address
    index: int
    next_hop: str | None  # "module:function" resolved in the worker (tests and benchmarks), or None
    gc_threshold: tuple[int, ...]
    log: LogSettings  # the parent's: the worker writes the same format (logs.py)


def frame(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at end of file (the other process closed the pipe or died)."""
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes")
        message = pickle.loads(await reader.readexactly(size))
    except asyncio.IncompleteReadError:
        return None
    if not isinstance(message, tuple) or not message:
        raise ValueError(f"not a message: {message!r}")
    return message
