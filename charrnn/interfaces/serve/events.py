"""Server-sent events, and hearing that a client went away."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from charrnn.training.run import json_safe


def sse(data: Any) -> str:
    """One server-sent event carrying `data` as JSON."""
    return f"data: {json.dumps(json_safe(data), ensure_ascii=False)}\n\n"


def event_stream(events: AsyncIterator[str]) -> Any:
    """A streamed answer of server-sent events (Starlette stops iterating `events` when the client goes away)."""
    from starlette.responses import StreamingResponse

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def disconnected(request: Any) -> None:
    """Return when the client goes away (its body is read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def merged(pieces: asyncio.Queue) -> AsyncIterator[tuple]:
    """The (sample, text, start, end, finish_reason) pieces of a queue that ends with None, each run of one sample's
    pieces already waiting merged into one: a client that reads slowly gets fewer, larger events instead of a
    backlog of writes that keeps the event loop from the other clients."""
    done = False
    while not done:
        first = await pieces.get()
        if first is None:
            return
        ready = [first]
        while not pieces.empty():
            item = pieces.get_nowait()
            if item is None:
                done = True
                break
            ready.append(item)
        run = ready[0]
        for sample, text, start, end, finish in ready[1:]:
            if sample is run[0]:
                run = (sample, run[1] + text, run[2], end, finish)
            else:
                yield run
                run = (sample, text, start, end, finish)
        yield run
