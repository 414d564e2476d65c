"""Running the app: `serve` (uvicorn in the foreground until Ctrl-C, what `spokenqa serve` does),
`BackgroundServer` (uvicorn in a daemon thread on a free loopback port, for tests, benchmarks and
scripts), and `bind_socket`, which both listen on (a taken port is a ConfigError, said before the
model loads)."""

import os
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from spokenqa.errors import ConfigError
from spokenqa.serve.app import create_app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one). ConfigError when it cannot be."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be in 0-65535, got {port}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: FastAPI, log_level: str, access_log: bool) -> uvicorn.Config:
    return uvicorn.Config(app, log_level=log_level, access_log=access_log, server_header=False,
                          timeout_keep_alive=5, limit_concurrency=256)


def serve(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    access_log: bool = True,
    **app_options,
) -> None:
    """Load the model (default: the shipped one) and serve the API and page with uvicorn until
    interrupted (Ctrl-C). `app_options` go to `create_app` (limits, engine, threads...)."""
    from spokenqa.checkpoint import resolve_checkpoint

    checkpoint = resolve_checkpoint(checkpoint)
    sock = bind_socket(host, port)
    try:
        app = create_app(checkpoint, **app_options)
        config = _uvicorn_config(app, log_level, access_log)
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        archive = app.state.service.archive
        over = "" if archive is None else f" over the archive {archive.path}"
        print(f"spokenqa: serving {checkpoint} ({app.state.service.qa.runtime}){over} at "
              f"http://{shown}:{bound[1]}/ (API docs: /docs)", flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """Run an app with uvicorn in a daemon thread on a free loopback port (tests, benchmarks):

        with BackgroundServer(create_app(ckpt)) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.url = ""

    def __enter__(self) -> "BackgroundServer":
        self._sock = bind_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        config = _uvicorn_config(self.app, self.log_level, access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
