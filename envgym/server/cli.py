"""`envgym serve ENV_ID`: run the OpenEnv-protocol server (or, with `--mcp-stdio`, one MCP session on stdio).

Why the uvicorn limits live here: the WebSocket frame cap, the per-connection queue and the ping timeout are
what bound a hostile client's memory and detect a vanished one, so they are set explicitly, not left to
defaults.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

TOKEN_ENV = "ENVGYM_SERVE_TOKEN"


def serve(
    env_id: Annotated[str, typer.Argument(help="a registered id, e.g. envgym/Sokoban-v0")],
    host: Annotated[
        str, typer.Option(help="bind address; anything but loopback needs a token in $ENVGYM_SERVE_TOKEN")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    max_sessions: Annotated[int, typer.Option(min=1, help="concurrent sessions (one env each)")] = 64,
    idle_timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds without a message before a session ends")
    ] = 300.0,
    max_message_bytes: Annotated[int, typer.Option(min=1024, help="largest accepted client frame")] = 1 << 20,
    ping_interval: Annotated[float, typer.Option(min=0.1, help="WebSocket ping period (dead-peer detection)")] = 5.0,
    env_kwargs: Annotated[
        str | None, typer.Option(help='gym.make kwargs as JSON, e.g. \'{"sandbox": "docker"}\' (operator only)')
    ] = None,
    client_params: Annotated[
        bool, typer.Option(help="let clients set the env's native params at reset (validated by the env)")
    ] = True,
    token_env: Annotated[str, typer.Option(help="environment variable that holds the bearer token")] = TOKEN_ENV,
    mcp_stdio: Annotated[bool, typer.Option(help="serve one MCP session on stdin/stdout instead of HTTP")] = False,
) -> None:
    """Serve ENV_ID over the network, speaking OpenEnv's protocol (`/ws`), with `/health` and `/metrics`."""
    from envgym.cli import _parse_json_option

    kwargs = _parse_json_option(env_kwargs, "--env-kwargs")
    if mcp_stdio:
        from envgym.server.mcp_server import run_stdio

        run_stdio(env_id, kwargs)
        return
    import uvicorn

    from envgym.server.app import ServeConfig, create_app

    token = os.environ.get(token_env) or None
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter(f"serving on {host} without a token: set {token_env} (bearer token) first")
    try:
        app = create_app(
            ServeConfig(
                env_id=env_id,
                env_kwargs=kwargs,
                max_sessions=max_sessions,
                idle_timeout_s=idle_timeout,
                max_message_bytes=max_message_bytes,
                token=token,
                allow_params=client_params,
            )
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"envgym serve {env_id} on ws://{host}:{port}/ws (max {max_sessions} sessions)", err=True)
    uvicorn.run(app, log_level="warning", **uvicorn_limits(host, port, max_sessions, max_message_bytes, ping_interval))


def uvicorn_limits(host: str, port: int, max_sessions: int, max_message_bytes: int, ping: float) -> dict[str, Any]:
    """Transport limits: frames over 4x the app limit close the socket (1009) before they are buffered."""
    return {
        "host": host,
        "port": port,
        "ws": "websockets-sansio",
        "ws_max_size": 4 * max_message_bytes,
        "ws_max_queue": 4,
        "ws_ping_interval": ping,
        "ws_ping_timeout": 2 * ping,
        "limit_concurrency": 2 * max_sessions + 32,
        "timeout_graceful_shutdown": 5,
    }


def serve_image() -> None:
    """Build the `envgym serve` container image offline on envgym's base image; print its tag."""
    from envgym.server.image import ServerImageError, build_server_image

    try:
        tag = build_server_image(log=lambda line: typer.echo(line, err=True))
    except ServerImageError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(tag)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("serve-image")(serve_image)
