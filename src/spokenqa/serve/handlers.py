"""Every error the API gives is ``{"error": "one line"}`` with its status: `error_response` makes
one, and `add_error_handlers` turns what FastAPI, Starlette and spokenqa raise into one (a request
validation error into 400/422 with the fields named, a spokenqa AudioError into 415, any other
SpokenQAError into 422, anything unexpected into a 500 that is logged in full)."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from spokenqa.errors import AudioError, SpokenQAError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _where(loc) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "form")]
    text = ""
    for p in parts:
        if not isinstance(p, int) and not (str(p).isprintable() and len(str(p)) <= 40):
            p = repr(str(p)[:40])  # a client's unknown key: keep the message one short line
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """The status (400 for JSON that does not parse, else 422) and one line naming up to 5 errors."""
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            pos = err.get("loc", ("body", "?"))[-1]
            return 400, f"the request body is not valid JSON: {reason} (at character {pos})"
    messages = []
    for err in errors[:5]:
        where, msg = _where(err.get("loc", ())), str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "missing" and not where:
            messages.append("the request needs a JSON body")
        elif err.get("type") == "model_attributes_type" or (err.get("type") == "dict_type" and not where):
            messages.append("the request body must be a JSON object")
        else:
            messages.append(f"{where}: {msg}" if where else msg)
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "; ".join(messages) + more


def http_message(request: Request, exc: HTTPException) -> str:
    """Starlette's terse default details (404, 405, a body that does not parse) made to say what to do."""
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
    elif exc.status_code == 400 and message == "There was an error parsing the body":
        message = "the request body cannot be parsed: send UTF-8 JSON (or multipart for /v1/transcribe)"
    elif exc.status_code == 405:
        allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}" + (f" (use {allowed})" if allowed else "")
    return message


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, message = validation_message(exc)
    return error_response(status, message)


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, http_message(request, exc), getattr(exc, "headers", None))


async def _spokenqa(request: Request, exc: SpokenQAError) -> JSONResponse:
    return error_response(415 if isinstance(exc, AudioError) else 422, str(exc))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(SpokenQAError, _spokenqa)
    app.add_exception_handler(Exception, _internal)
