"""asyncio support for :class:`llmedge.Request`.

``async for piece in request`` and ``await request`` run the request's blocking waits (which
release the GIL) in the running loop's default executor, so the event loop is never blocked.
Cancelling the awaiting task cancels the request, which then stops before its next token.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def _in_executor(request: Any, wait: Any) -> Any:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, wait)
    except asyncio.CancelledError:
        request.cancel()
        raise


async def anext_piece(request: Any) -> str:
    """The request's next piece; ``StopAsyncIteration`` after the last one."""
    piece = await _in_executor(request, request._next_piece)
    if piece is None:
        raise StopAsyncIteration
    return piece


async def result(request: Any) -> Any:
    """The request's ``Completion`` once it has ended."""
    return await _in_executor(request, request.result)
