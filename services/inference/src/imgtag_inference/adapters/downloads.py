"""`imgtag models pull NAME`: downloads a CLIP model's ONNX files from a Hugging Face compatible
hub into models_dir/clip/<name>/, for users with internet (the service never downloads).

- The file list and each file's checksum come from the hub's tree API
  (GET {endpoint}/api/models/{repo}/tree/{revision}?recursive=true): LFS files carry their
  sha256, small files their git blob id (sha1 of "blob <size>\\0" + content). A file whose
  checksum or size does not match is deleted and the pull fails: nothing unverified is kept.
- Files download to a staging directory (models_dir/clip/.<name>.partial/) as <file>.part; an
  interrupted pull resumes each file with an HTTP Range request (a server that ignores it is
  answered from the start). When every file is verified, the staging directory is renamed to
  its final name in one step, so the service never sees half a model.

Any hub that speaks these two endpoints works (huggingface.co, a mirror through
IMGTAG_MODELS_ENDPOINT or HF_ENDPOINT, or a local test server)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

DEFAULT_ENDPOINT = "https://huggingface.co"
# Names `imgtag models pull` knows, and the repository that has them as ONNX (visual/ and
# textual/ towers, tokenizer.json). Any other "owner/repo" can be pulled by its full name.
KNOWN_MODELS = {
    "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k": "immich-app/XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
    "XLM-Roberta-Large-Vit-B-16Plus": "immich-app/XLM-Roberta-Large-Vit-B-16Plus",
    "ViT-B-32__openai": "immich-app/ViT-B-32__openai",
    "ViT-B-16__openai": "immich-app/ViT-B-16__openai",
}
# What a CLIP model needs; other files in such repositories (ARM NN, RKNN, fp16 copies) are not fetched.
_WANTED = (
    "config.json",
    "visual/model.onnx",
    "visual/model.onnx_data",
    "visual/preprocess_cfg.json",
    "textual/model.onnx",
    "textual/model.onnx_data",
    "textual/tokenizer.json",
    "textual/tokenizer_config.json",
    "textual/special_tokens_map.json",
    "onnx/vision_model.onnx",
    "onnx/text_model.onnx",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
)
RETRIES = 3

Progress = Callable[[str, int, int], None]  # (path, bytes so far, total bytes)


class PullError(Exception):
    """The pull failed; the message says why (no partial model is left where the service looks)."""


class ChecksumMismatch(PullError):
    pass


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str = ""  # LFS files
    git_sha1: str = ""  # small files: git blob id


def default_endpoint() -> str:
    return os.environ.get("IMGTAG_MODELS_ENDPOINT") or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def resolve(name: str) -> tuple[str, str]:
    """(local directory name, repository) for a known name or an "owner/repo"."""
    if name in KNOWN_MODELS:
        return name, KNOWN_MODELS[name]
    if name.count("/") == 1 and all(name.split("/")):
        return name.split("/")[1], name
    known = ", ".join(sorted(KNOWN_MODELS))
    raise PullError(f"unknown model {name!r}: use one of {known}, or a repository as owner/name")


def list_files(client: httpx.Client, endpoint: str, repo: str, revision: str) -> list[RemoteFile]:
    url = f"{endpoint.rstrip('/')}/api/models/{repo}/tree/{quote(revision, safe='')}"
    params: dict[str, str] | None = {"recursive": "true"}
    entries = []
    while url:
        reply = client.get(url, params=params)
        if reply.status_code != 200:
            raise PullError(f"listing {repo}@{revision} failed: HTTP {reply.status_code} {reply.text[:200]}")
        entries += reply.json()
        url = reply.links.get("next", {}).get("url", "")
        params = None
    files = []
    for entry in entries:
        if entry.get("type") != "file" or entry["path"] not in _WANTED:
            continue
        lfs = entry.get("lfs") or {}
        files.append(
            RemoteFile(
                entry["path"],
                int(lfs.get("size", entry.get("size", 0))),
                lfs.get("oid", ""),
                "" if lfs else entry.get("oid", ""),
            )
        )
    if not files:
        raise PullError(f"{repo}@{revision} holds no CLIP ONNX files")
    return files


def _verify(path: Path, remote: RemoteFile) -> None:
    size = path.stat().st_size
    if size != remote.size:
        raise ChecksumMismatch(f"{remote.path}: {size} bytes, the hub says {remote.size}")
    if remote.sha256:
        digest, expected = hashlib.sha256(), remote.sha256
    elif remote.git_sha1:
        digest, expected = hashlib.sha1(f"blob {size}\0".encode()), remote.git_sha1
    else:
        raise ChecksumMismatch(f"{remote.path}: the hub gives no checksum, refusing an unverifiable file")
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ChecksumMismatch(f"{remote.path}: checksum {digest.hexdigest()} does not match the hub's {expected}")


def _download(client: httpx.Client, url: str, part: Path, remote: RemoteFile, progress: Progress | None) -> None:
    done = part.stat().st_size if part.exists() else 0
    if done > remote.size:
        part.unlink()
        done = 0
    if done == remote.size:
        return
    headers = {"Range": f"bytes={done}-"} if done else {}
    with client.stream("GET", url, headers=headers, follow_redirects=True) as reply:
        if reply.status_code == 200 and done:
            done = 0  # the server ignored the range: start again
        elif reply.status_code not in (200, 206):
            raise PullError(f"{remote.path}: HTTP {reply.status_code}")
        with open(part, "ab" if done else "wb") as file:
            for chunk in reply.iter_bytes():  # as it arrives: an interruption keeps what came
                file.write(chunk)
                done += len(chunk)
                if progress:
                    progress(remote.path, done, remote.size)


def pull(
    name: str,
    models_dir: Path,
    *,
    endpoint: str | None = None,
    revision: str = "main",
    progress: Progress | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Download and verify `name`; returns its directory. Pulling a model already there is a no-op."""
    local, repo = resolve(name)
    endpoint = endpoint or default_endpoint()
    target = models_dir / "clip" / local
    if target.is_dir():
        return target
    staging = models_dir / "clip" / f".{local}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        files = list_files(client, endpoint, repo, revision)
        for remote in files:
            url = f"{endpoint.rstrip('/')}/{repo}/resolve/{quote(revision, safe='')}/{remote.path}"
            final = staging / remote.path
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                continue  # verified in an earlier, interrupted pull
            part = final.with_name(final.name + ".part")
            for attempt in range(1, RETRIES + 1):
                try:
                    _download(client, url, part, remote, progress)
                    break
                except httpx.TransportError as error:  # dropped connection: resume from what arrived
                    if attempt == RETRIES:
                        raise PullError(f"{remote.path}: {error} (run the pull again to resume)") from error
            try:
                _verify(part, remote)
            except ChecksumMismatch:
                part.unlink(missing_ok=True)
                raise
            part.rename(final)
    staging.rename(target)
    return target


def remove_partial(name: str, models_dir: Path) -> None:
    local, _ = resolve(name)
    shutil.rmtree(models_dir / "clip" / f".{local}.partial", ignore_errors=True)
