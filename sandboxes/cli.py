"""`envgym sandbox ...`: build the offline base image, list and prune sandbox containers, open a shell.

Why a CLI: building images and cleaning up after crashed runs are things users do by hand.
"""

from __future__ import annotations

import subprocess
import time

import typer
from rich.console import Console
from rich.table import Table

console = Console()
sandbox_app = typer.Typer(help="Sandboxes: images, containers, interactive shells.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command group to the main envgym CLI."""
    app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("build-base")
def build_base(
    force: bool = typer.Option(False, help="rebuild even if the tagged image exists"),
    mirror: str = typer.Option("", help="Debian mirror (default: the one apt uses here)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="print every build line"),
) -> None:
    """Build the base image offline (debootstrap + docker import); prints its tag."""
    from envgym.cli_errors import CommandError
    from envgym.sandboxes.base import SandboxInfraError
    from envgym.sandboxes.images.base_image import BaseImageSpec, build_base_image

    spec = BaseImageSpec()
    start = time.monotonic()
    with console.status(f"building {spec.tag()} ...") as status:

        def log(line: str) -> None:
            if verbose:
                console.print(line, markup=False, highlight=False)
            status.update(f"[bold]{spec.tag()}[/] {time.monotonic() - start:5.0f}s  {line[:90]}")

        try:
            tag = build_base_image(spec, mirror=mirror or None, log=log, force=force)
        except SandboxInfraError as exc:
            raise CommandError(f"build failed: {exc}") from exc
    console.print(f"[green]{tag}[/] ready ({time.monotonic() - start:.0f} s)")


@sandbox_app.command("ls")
def ls() -> None:
    """List envgym containers (with owner liveness) and envgym images."""
    from envgym.sandboxes.docker_client import docker_client
    from envgym.sandboxes.lifecycle import LABEL_CREATED, LABEL_OWNER_PID, list_containers, owner_alive

    client = docker_client()
    table = Table("container", "image", "status", "owner pid", "owner alive", "age")
    for c in list_containers(client):
        age = time.time() - float(c.labels.get(LABEL_CREATED, time.time()))
        image = c.attrs.get("Config", {}).get("Image", "")
        table.add_row(
            c.id[:12],
            image,
            c.status,
            c.labels.get(LABEL_OWNER_PID, "?"),
            "yes" if owner_alive(c.labels) else "[red]no[/]",
            f"{age:.0f}s",
        )
    console.print(table)
    images = Table("image", "size", "created")
    for image in client.images.list(name="envgym/*"):
        for tag in image.tags:
            images.add_row(tag, f"{image.attrs.get('Size', 0) / 1e6:.0f} MB", image.attrs.get("Created", "")[:19])
    console.print(images)


@sandbox_app.command("prune")
def prune(
    all_: bool = typer.Option(False, "--all", help="remove every envgym container, live owners included"),
) -> None:
    """Remove containers whose owner process is gone (or all of them with --all)."""
    from envgym.sandboxes.docker_client import docker_client
    from envgym.sandboxes.lifecycle import _remove, list_containers, reap

    client = docker_client()
    removed = _remove(list_containers(client)) if all_ else reap(client)
    console.print(f"removed {removed} container(s)")


@sandbox_app.command("shell")
def shell(
    image: str = typer.Argument("", help="image (default: the base image)"),
    local: bool = typer.Option(False, "--local", help="use the local bubblewrap jail instead of Docker"),
    network: bool = typer.Option(False, help="allow network access"),
) -> None:
    """Open an interactive shell in a fresh sandbox; it is removed when you exit."""
    from envgym.sandboxes import SandboxLimits, open_sandbox

    limits = SandboxLimits(network=network)
    if local:
        with open_sandbox("local", limits=limits) as sb:
            console.print(f"local sandbox, workspace {sb.workspace} (Ctrl-D to leave)")
            _repl(sb)
        return
    with open_sandbox("docker", image=image or None, limits=limits) as sb:
        container = getattr(sb, "container", None)
        uid = getattr(sb, "uid", 1000)
        if container is None:
            _repl(sb)
            return
        console.print(f"container {container.id[:12]}; exit to remove it")
        subprocess.call(["docker", "exec", "-it", "-u", f"{uid}:{uid}", "-w", sb.workspace, container.id, "bash"])


def _repl(sb: object) -> None:
    from envgym.sandboxes.base import Sandbox

    assert isinstance(sb, Sandbox)
    while True:
        try:
            command = input("sandbox$ ")
        except EOFError:
            break
        result = sb.exec(command)
        console.print(result.output, end="", markup=False, highlight=False)
        if result.exit_code:
            console.print(f"[dim]exit {result.exit_code}{' (timed out)' if result.timed_out else ''}[/]")
