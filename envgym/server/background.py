"""Run the server on a background thread of this process (tests, benchmarks, notebooks).

Why: the same uvicorn server and limits as `envgym serve`, on a real loopback socket, without a subprocess
to start and clean up; the port is picked by the kernel so parallel runs never collide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from envgym.extras import needs_extra

with needs_extra("server"):  # a missing one names the extra to install
    import uvicorn

from envgym.server.app import ServeConfig, create_app
from envgym.server.cli import uvicorn_limits


@contextmanager
def serve_in_background(config: ServeConfig, ping_interval: float = 5.0) -> Iterator[tuple[str, uvicorn.Server]]:
    """Yield (`http://127.0.0.1:PORT`, the uvicorn server) while the server runs; stop it on exit."""
    app = create_app(config)
    limits = uvicorn_limits("127.0.0.1", 0, config.max_sessions, config.max_message_bytes, ping_interval)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **limits))
    thread = threading.Thread(target=server.run, name="envgym-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the background server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
