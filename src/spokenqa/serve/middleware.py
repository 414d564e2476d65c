"""ASGI middleware: `BodyLimit`, the request body's size and time limits (413, 408), applied
before any route reads a byte of the body."""

import time

import anyio
from starlette.responses import JSONResponse, Response

from spokenqa.serve.handlers import error_response


class BodyLimit:
    """ASGI middleware: answer 413 to a request whose body is over the limit for its path —
    at once when its Content-Length says so (nothing of the body is read), or as soon as a body
    without one (chunked) passes the limit — and 408 to one whose body has not all arrived
    within `timeout` seconds of the request's headers (a client trickling its body, slowloris
    style, would otherwise hold its connection for as long as it likes). Both close the
    connection."""

    def __init__(self, app, limit_for, timeout: float | None = None) -> None:
        self.app, self.limit_for, self.timeout = app, limit_for, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await error_response(400, "bad Content-Length header")(scope, receive, send)
            if size > limit:
                return await self._too_large(scope, receive, send, limit, size)
        state = {"received": 0, "over": False, "started": False, "complete": False}
        deadline = None if self.timeout is None else time.monotonic() + self.timeout

        async def refuse(response: Response):
            state["over"] = True
            if not state["started"]:
                state["started"] = True
                await response(scope, receive, send)
            return {"type": "http.disconnect"}  # the app stops reading here

        async def limited_receive():
            if state["over"]:
                return {"type": "http.disconnect"}
            if deadline is None or state["complete"]:
                message = await receive()
            else:
                with anyio.move_on_after(deadline - time.monotonic()) as waited:
                    message = await receive()
                if waited.cancelled_caught:
                    return await refuse(error_response(
                        408, f"the request body did not arrive within {self.timeout:g} s; send it faster",
                        {"Connection": "close"}))
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["complete"] = not message.get("more_body", False)
                if state["received"] > limit:
                    return await refuse(self._too_large_response(scope, limit, None))
            return message

        async def guarded_send(message):
            if state["over"]:
                return  # our 413 or 408 went out instead
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise

    @staticmethod
    def _too_large_response(scope, limit: int, size: int | None) -> JSONResponse:
        what = f"{size} bytes" if size is not None else "more than that"
        message = f"the request body is too large: the limit for {scope['path']} is {limit} bytes, got {what}"
        return error_response(413, message, {"Connection": "close"})

    @classmethod
    async def _too_large(cls, scope, receive, send, limit: int, size: int | None) -> None:
        await cls._too_large_response(scope, limit, size)(scope, receive, send)
