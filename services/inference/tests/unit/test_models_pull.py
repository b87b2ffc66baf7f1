"""`imgtag models pull` against a local HTTP server that speaks the hub's two endpoints (tree
listing with checksums, file download with Range): verified files, refused mismatches, resumed
downloads, and a result the service loads."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from imgtag_dev.cli import app
from imgtag_dev.clip_models import make_clip
from imgtag_inference.adapters import clip_files, downloads

REPO = "tester/Tiny-CLIP"


class Hub:
    """Files of one repository, served like a Hugging Face hub; records each request's Range."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.lies: dict[str, str] = {}  # path -> wrong sha256 to announce
        self.cut_after: dict[str, int] = {}  # path -> drop the connection after this many bytes, once
        self.ranges: list[tuple[str, str]] = []

    def tree(self) -> list[dict]:
        entries = []
        for path, data in sorted(self.files.items()):
            if path.endswith(".json"):  # small files: git blob ids, as the hub does
                oid = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
                entries.append({"type": "file", "path": path, "size": len(data), "oid": oid})
            else:
                sha = self.lies.get(path) or hashlib.sha256(data).hexdigest()
                entries.append(
                    {
                        "type": "file",
                        "path": path,
                        "size": len(data),
                        "oid": "x",
                        "lfs": {"oid": sha, "size": len(data), "pointerSize": 130},
                    }
                )
        entries.append({"type": "directory", "path": "visual", "oid": "y", "size": 0})
        entries.append({"type": "file", "path": "visual/model.armnn", "size": 3, "oid": "z"})  # not wanted
        return entries


@contextlib.contextmanager
def serve(hub: Hub) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith(f"/api/models/{REPO}/tree/main"):
                return self._send(200, json.dumps(hub.tree()).encode(), "application/json")
            prefix = f"/{REPO}/resolve/main/"
            if not self.path.startswith(prefix) or self.path[len(prefix) :] not in hub.files:
                return self._send(404, b"not found", "text/plain")
            path = self.path[len(prefix) :]
            data = hub.files[path]
            requested = self.headers.get("Range", "")
            hub.ranges.append((path, requested))
            start = int(requested.removeprefix("bytes=").split("-")[0]) if requested else 0
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = hub.cut_after.pop(path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(2)  # the connection drops mid-file
                return
            self.wfile.write(body)

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hub(tmp_path) -> Hub:
    source = tmp_path / "source"
    make_clip(source)
    return Hub({str(p.relative_to(source)): p.read_bytes() for p in source.rglob("*") if p.is_file()})


def test_a_pull_downloads_verifies_and_gives_a_loadable_model(tmp_path, hub, backend) -> None:
    seen: dict[str, int] = {}
    with serve(hub) as url:
        target = downloads.pull(
            REPO, tmp_path / "models", endpoint=url, progress=lambda path, done, total: seen.__setitem__(path, done)
        )
    assert target == tmp_path / "models" / "clip" / "Tiny-CLIP"
    assert {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()} == hub.files
    assert seen["visual/model.onnx"] == len(hub.files["visual/model.onnx"])
    assert not list((tmp_path / "models" / "clip").glob(".*"))  # no staging left
    clip = clip_files.load(clip_files.find(tmp_path / "models", "auto"), backend)
    assert clip.name == "clip-tiny-clip"


def test_a_checksum_mismatch_is_refused_and_nothing_is_installed(tmp_path, hub) -> None:
    hub.lies["textual/model.onnx"] = "0" * 64
    with serve(hub) as url, pytest.raises(downloads.ChecksumMismatch, match=r"textual/model\.onnx"):
        downloads.pull(REPO, tmp_path, endpoint=url)
    assert not (tmp_path / "clip" / "Tiny-CLIP").exists()
    staging = tmp_path / "clip" / ".Tiny-CLIP.partial"
    assert not (staging / "textual" / "model.onnx").exists() and not (staging / "textual" / "model.onnx.part").exists()


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path, hub) -> None:
    size = len(hub.files["visual/model.onnx"])
    hub.cut_after["visual/model.onnx"] = size // 3
    with serve(hub) as url:
        target = downloads.pull(REPO, tmp_path, endpoint=url)
    assert (target / "visual" / "model.onnx").read_bytes() == hub.files["visual/model.onnx"]
    visual = [r for path, r in hub.ranges if path == "visual/model.onnx"]
    assert visual[0] == "" and visual[1] == f"bytes={size // 3}-", visual


def test_a_pull_stopped_halfway_continues_in_the_next_run(tmp_path, hub) -> None:
    staging = tmp_path / "clip" / ".Tiny-CLIP.partial"
    (staging / "visual").mkdir(parents=True)
    (staging / "visual" / "model.onnx.part").write_bytes(hub.files["visual/model.onnx"][:1000])
    with serve(hub) as url:
        target = downloads.pull(REPO, tmp_path, endpoint=url)
    assert (target / "visual" / "model.onnx").read_bytes() == hub.files["visual/model.onnx"]
    assert ("visual/model.onnx", "bytes=1000-") in hub.ranges


def test_the_cli_pulls_with_progress_and_explains_failures(tmp_path, hub) -> None:
    runner = CliRunner()
    with serve(hub) as url:
        ok = runner.invoke(app, ["models", "pull", REPO, "--models-dir", str(tmp_path), "--endpoint", url])
        unknown = runner.invoke(app, ["models", "pull", "no-such-model", "--models-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "restart the inference service" in ok.output
    assert (tmp_path / "clip" / "Tiny-CLIP" / "textual" / "tokenizer.json").exists()
    assert unknown.exit_code == 1 and "unknown model" in unknown.output


def test_known_names_map_to_their_repositories() -> None:
    assert downloads.resolve("XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k") == (
        "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
        "immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
    )
    assert downloads.resolve("someone/Other-CLIP") == ("Other-CLIP", "someone/Other-CLIP")
