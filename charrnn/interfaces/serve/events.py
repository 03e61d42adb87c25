"""Server-sent events, and hearing that a client went away."""

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
