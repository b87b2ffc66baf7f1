"""`imgtag`: the developer command line (installed into the venv by `make`)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console

from imgtag_dev import codegen
from imgtag_dev.paths import guard_libraries_in_checkout
from imgtag_dev.processes import PortInUse

# `run` and `render-gateway` import the stack inside: it imports the services, which import the
# generated stubs, and `imgtag gen` must work without them (it makes them, on a fresh checkout).

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)


@app.command()
def gen(if_stale: bool = typer.Option(False, help="Skip when outputs are newer than the protos.")) -> None:
    """Generate Python stubs and the gateway descriptor set from protos/."""
    if if_stale and codegen.generated_is_current():
        return
    codegen.generate()
    console.print(f"generated stubs for {len(codegen.proto_files())} proto files")


@app.command("access-doc")
def access_doc() -> None:
    """Regenerate docs/api-access.md (who may call each route) from the contracts."""
    from imgtag_dev import access_doc as doc

    console.print(f"wrote {doc.write()}")


@app.command()
def openapi() -> None:
    """Regenerate web/public/openapi.json (the REST API's OpenAPI document) from the
    contracts, with grpc-gateway's protoc-gen-swagger (Debian package golang-grpc-gateway)."""
    from imgtag_dev import openapi as doc

    console.print(f"wrote {doc.write()}")


@app.command("import")
def import_(
    paths: list[Path] = typer.Argument(..., help="Folders (searched recursively), image files and ZIP archives."),
    url: str = typer.Option("http://127.0.0.1:8080", envvar="IMGTAG_URL", show_envvar=True, help="The ImgTag gateway."),
    api_key: str = typer.Option(
        ..., envvar="IMGTAG_API_KEY", show_envvar=True, help="An API key with the assets.upload scope (itk_...)."
    ),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=32, help="Uploads (and checksums) at once."),
    collection: str = typer.Option("", help="Add every image to this collection (collections/...)."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag every image (repeat for more tags)."),
    skip_analysis: bool = typer.Option(False, help="Skip AI analysis of the imported images."),
) -> None:
    """Import folders of photos and ZIP archives into a running ImgTag. Resumable: images already
    in your library (same SHA-256) are skipped before anything is sent, so a re-run sends only
    what is missing. Exit code 1 when any image failed, 2 when the import could not run."""
    from imgtag_dev.importer import run_import

    code = run_import(
        paths, url=url, api_key=api_key, jobs=jobs, collection=collection, tags=tag, skip_analysis=skip_analysis
    )
    raise typer.Exit(code)


@app.command("render-gateway")
def render_gateway(
    out: Path = typer.Option(..., help="Where to write the Envoy config."),
    for_deployment: bool = typer.Option(
        False, help="For the container images and Kubernetes (services by name, see imgtag_dev.deploy)."
    ),
    cors_origin: list[str] = typer.Option([], help="With --for-deployment: another origin allowed to call the API."),
    trusted_hops: int = typer.Option(0, min=0, help="With --for-deployment: proxies in front of the gateway."),
) -> None:
    """Render the Envoy config for the configured ports (IMGTAG_* settings, as `run` would)."""
    if for_deployment:
        from imgtag_dev import deploy

        out.write_text(deploy.gateway_config(cors_origins=cors_origin, trusted_hops=trusted_hops))
        return
    from imgtag_dev.stack import Stack, StackSettings

    stack = Stack(StackSettings())
    stack.logs_dir.mkdir(parents=True, exist_ok=True)  # Envoy opens its access log at start
    out.write_text(stack.gateway_config())


@app.command()
def run() -> None:
    """Run the whole product locally until Ctrl-C: PostgreSQL, S3, services, gateway, web."""
    from imgtag_dev.stack import Stack, StackSettings

    settings = StackSettings()
    stack = Stack(settings)
    notice = guard_libraries_in_checkout(settings.data_dir)
    if notice:
        console.print(f"[bold yellow]{notice}[/]")
    stop = threading.Event()
    # Ctrl-C / SIGTERM only set a flag: shutdown happens in order, below, not mid-start.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with console.status("starting ImgTag ..."):
            stack.start()
        if not stop.is_set():
            console.print(f"[bold green]ImgTag is running at {stack.gateway_url}[/]")
            if stack.initial_admin:
                username, password = stack.initial_admin
                console.print(
                    "[bold yellow]First start: an administrator was created.[/]\n"
                    f"  username: [bold]{username}[/]\n  password: [bold]{password}[/]\n"
                    "  This password is shown only now and stored only as a hash: sign in and change it."
                )
            console.print(f"data: {settings.data_dir}  logs: {stack.logs_dir}")
            console.print("Press Ctrl-C to stop.")
            print(f"IMGTAG_URL={stack.gateway_url}", flush=True)  # machine-readable, for scripts
            stop.wait()
    except PortInUse as error:
        console.print(f"[bold red]cannot start:[/] {error}")
        sys.exit(2)
    except Exception as error:
        console.print(f"[bold red]start-up failed:[/] {error}")
        stack.stop()
        sys.exit(1)
    console.print("stopping ImgTag ...")
    stack.stop()
    console.print("stopped.")


models_app = typer.Typer(no_args_is_help=True, help="Models of the inference service (CLIP downloads).")
app.add_typer(models_app, name="models")


def _models_dir(models_dir: Path | None) -> Path:
    if models_dir is not None:
        return models_dir
    from imgtag_dev.stack import Stack, StackSettings

    return Stack(StackSettings()).models_dir  # where `imgtag run` points the inference service


@models_app.command("pull")
def models_pull(
    name: str = typer.Argument(..., help="A known name (see `imgtag models known`) or a repository owner/name."),
    models_dir: Path | None = typer.Option(None, help="Default: <data dir>/models, where `imgtag run` looks."),
    endpoint: str | None = typer.Option(
        None, help="Hub to download from (default: $IMGTAG_MODELS_ENDPOINT, $HF_ENDPOINT or huggingface.co)."
    ),
    revision: str = typer.Option("main", help="Branch, tag or commit of the repository."),
) -> None:
    """Download a CLIP model's ONNX files, verifying every checksum; an interrupted pull resumes.
    Restart the inference service (or `imgtag run`) to load it."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from imgtag_inference.adapters import downloads

    directory = _models_dir(models_dir)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(path: str, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = bar.add_task(path, total=total)
            bar.update(tasks[path], completed=done)

        try:
            target = downloads.pull(name, directory, endpoint=endpoint, revision=revision, progress=progress)
        except downloads.PullError as error:
            console.print(f"[bold red]pull failed:[/] {error}")
            raise typer.Exit(1) from error
    console.print(f"[bold green]{name}[/] is in {target}; restart the inference service to load it.")


@models_app.command("known")
def models_known() -> None:
    """Names `imgtag models pull` knows, and where they come from."""
    from imgtag_inference.adapters import downloads

    for name, repo in downloads.KNOWN_MODELS.items():
        console.print(f"{name}  ({repo})")


if __name__ == "__main__":
    app()
