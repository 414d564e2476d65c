"""Audio by byte range, so a browser's player can seek: `ranged_bytes` for an upload kept in
memory (``/v1/audio/{transcript_id}``), `RangedFile` for a recording of the archive on disk
(``/v1/documents/{id}/audio``). Both read the ``Range`` header with `byte_range`: one range
``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (what browsers send) is answered with 206, one outside
the content (or ending before it starts) with a JSON 416, and anything else (several ranges, a malformed header) is ignored
and the whole content sent, as RFC 9110 allows."""

import os
import re

from starlette.responses import FileResponse, Response

from spokenqa.serve.handlers import error_response

HEADERS = {"Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
_RANGE = re.compile(r"\s*bytes=(\d*)-(\d*)\s*")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte `header` asks for out of `size` bytes; None: send it all.
    Raises ValueError when the range is outside the content (416)."""
    m = _RANGE.fullmatch(header or "")
    if not m or not (m[1] or m[2]):
        return None
    if m[1]:
        start, end = int(m[1]), (int(m[2]) if m[2] else size - 1)
    else:
        start, end = max(0, size - int(m[2])), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        raise ValueError(f"range {header!r} is outside the {size} bytes")
    return start, end


def _not_satisfiable(message: str, size: int) -> Response:
    return error_response(416, message, {"Content-Range": f"bytes */{size}"})


def ranged_bytes(data: bytes, media_type: str, range_header: str | None) -> Response:
    """The bytes, or the byte range asked for (206; 416 when it is outside)."""
    size = len(data)
    try:
        span = byte_range(range_header, size)
    except ValueError as e:
        return _not_satisfiable(str(e), size)
    if span is None:
        return Response(data, media_type=media_type, headers=HEADERS)
    start, end = span
    headers = {**HEADERS, "Content-Range": f"bytes {start}-{end}/{size}"}
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)


class RangedFile(FileResponse):
    """A file streamed from disk in chunks (Starlette's FileResponse, which answers the Range
    itself), with the Range header checked first by `byte_range`: Starlette's own answers to a
    bad one (a plain-text 400 or 416) are never reached, so every error stays JSON."""

    def __init__(self, path: str, media_type: str) -> None:
        super().__init__(path, media_type=media_type, headers=HEADERS)

    async def __call__(self, scope, receive, send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        asked = [v.decode("latin-1") for k, v in scope["headers"] if k == b"range"]
        if asked:
            size = os.stat(self.path).st_size
            try:
                span = byte_range(asked[0] if len(asked) == 1 else None, size)
            except ValueError as e:
                return await _not_satisfiable(str(e), size)(scope, receive, send)
            if span is not None:  # the one range, in the form Starlette parses
                headers.append((b"range", f"bytes={span[0]}-{span[1]}".encode()))
        await super().__call__({**scope, "headers": headers}, receive, send)
