"""A real uvicorn server for one ASGI app, on a free loopback port, in a thread: the web page and API tests."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """Started on construction (fails the test if uvicorn does not start within ``timeout`` s); ``close()`` stops it."""

    def __init__(self, app: Any, *, lifespan: str = "off", timeout: float = 20.0) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def serving(app: Any, **kwargs: Any) -> Iterator[str]:
    """The server's base URL while the block runs."""
    server = LiveServer(app, **kwargs)
    try:
        yield server.url
    finally:
        server.close()
