"""`imgtag import PATH...`: folders of photos, image files and ZIP archives into a running ImgTag,
through its gateway (REST) with an API key that has the assets.upload scope.

Resumable by design: every candidate is hashed here, and the catalog is asked which of those
SHA-256s the key's owner already has (`POST /v1/assets:findBySha256`, 1000 at a time) before any
byte is sent; only the rest is uploaded (`POST /v1/assets:upload`, with `expected_sha256` so the
server checks what arrived), `--jobs` at a time. A re-run of the same folder therefore sends
nothing it sent before, and says so.

ZIP archives are opened here and their entries uploaded one by one like files, rather than sent
whole with ImportZip: that way the same checksum lookup skips entries already there (ImportZip
would send the whole archive again on every run), entries get the same concurrency, progress and
per-item report as files, and a re-run after an interruption costs only what is missing. Entries
are read by index and streamed, never extracted to disk; directories, encrypted entries, links,
nested archives and entries that expand more than 100 times are left out.

Candidates are chosen by their first bytes (JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC/HEIF, AVIF), not
by name; anything else is counted as "not an image" and left alone. The exit code is 0 when
every image is in the library (created now, or already there), 1 when any failed (each failure
is listed with the server's reason), 2 when the import could not run at all, 130 when interrupted
(Ctrl-C; run it again to go on)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

CHUNK = 1024 * 1024
FIND_BATCH = 1000  # FindAssetsBySha256 takes at most this many at once
MAX_RATIO = 100
_HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
    b"avif",
    b"avis",
}
_NESTED = (".zip", ".zipx", ".jar", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".cab")
_RETRIES = 3
# Busy or briefly unreachable: worth another try (anything else is the answer).
_RETRIED_STATUSES = (429, 502, 503, 504)


def image_type(head: bytes) -> str | None:
    """The MIME type these first bytes announce, when they are an image ImgTag takes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 108, 124):
        return "image/bmp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/avif" if head[8:12] in (b"avif", b"avis") else "image/heic"
    return None


@dataclass
class Candidate:
    """An image to import: a file, or an entry of a ZIP archive (by index)."""

    label: str  # what the report shows: the path, or "archive.zip:entry/name"
    filename: str  # the base name the asset gets
    content_type: str
    path: Path
    entry: int | None = None  # index in the archive's central directory
    sha256: str = ""


@dataclass
class Report:
    created: int = 0
    duplicate: int = 0
    skipped: int = 0
    failed: int = 0
    not_images: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, outcome: str, label: str = "", why: str = "") -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            if outcome == "failed":
                self.failures.append((label, why))

    def line(self) -> str:
        return (
            f"created {self.created} · duplicate {self.duplicate} · already there {self.skipped} · failed {self.failed}"
        )


class ImportAborted(Exception):
    """The import cannot run at all (server unreachable, key refused)."""


# ---------------------------------------------------------------------------- finding candidates


class Archives:
    """One open ZipFile per archive and thread (zipfile objects are not shared across threads)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def open(self, path: Path) -> zipfile.ZipFile:
        cache: dict[Path, zipfile.ZipFile] = self._local.__dict__.setdefault("open", {})
        if path not in cache:
            cache[path] = zipfile.ZipFile(path)
        return cache[path]


def _zip_candidates(path: Path, label: str, report: Report) -> list[Candidate]:
    found = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        report.count("failed", label, f"not a readable ZIP archive: {error}")
        return []
    with archive:
        for index, info in enumerate(archive.infolist()):
            if info.is_dir():
                continue
            entry_label = f"{label}:{info.filename}"
            unreadable = (
                info.flag_bits & 0x1
                or (info.external_attr >> 16) & 0o170000 == 0o120000
                or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
                or info.filename.lower().endswith(_NESTED)
                or (info.file_size > 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1))
            )
            if unreadable:
                report.count("not_images")
                continue
            try:
                with archive.open(info) as stream:
                    kind = image_type(stream.read(32))
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as error:
                report.count("failed", entry_label, f"cannot read this entry: {error}")
                continue
            if kind is None:
                report.count("not_images")
                continue
            name = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
            found.append(Candidate(entry_label, name, kind, path, entry=index))
    return found


def find_candidates(paths: list[Path], report: Report) -> list[Candidate]:
    """Every image under `paths` (folders recursively, in name order; ZIP archives' entries)."""
    found: list[Candidate] = []

    def consider(file: Path) -> None:
        try:
            with open(file, "rb") as f:
                head = f.read(32)
        except OSError as error:
            report.count("failed", str(file), f"cannot read: {error.strerror or error}")
            return
        if head.startswith(b"PK\x03\x04") or file.suffix.lower() == ".zip":
            found.extend(_zip_candidates(file, str(file), report))
            return
        kind = image_type(head)
        if kind is None:
            report.count("not_images")
            return
        found.append(Candidate(str(file), file.name, kind, file))

    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):  # links to folders are not followed (no loops)
                dirs.sort()
                for name in sorted(files):
                    file = Path(root, name)
                    if file.is_file():
                        consider(file)
        elif path.is_file():
            consider(path)
        else:
            report.count("failed", str(path), "no such file or folder")
    return found


# ---------------------------------------------------------------------------- bytes


def chunks_of(candidate: Candidate, archives: Archives) -> Iterator[bytes]:
    """The candidate's bytes in chunks (a ZIP entry streamed, never extracted)."""
    if candidate.entry is None:
        with open(candidate.path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        return
    archive = archives.open(candidate.path)
    with archive.open(archive.infolist()[candidate.entry]) as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def hash_candidate(candidate: Candidate, archives: Archives) -> Candidate:
    digest = hashlib.sha256()
    for chunk in chunks_of(candidate, archives):
        digest.update(chunk)
    candidate.sha256 = digest.hexdigest()
    return candidate


# ---------------------------------------------------------------------------- the server


def _error_text(reply: httpx.Response) -> tuple[str, str]:
    """(reason, message) of a JSON google.rpc.Status error reply."""
    try:
        body = reply.json()
    except ValueError:
        return "", f"HTTP {reply.status_code}: {reply.text[:200]}"
    reasons = [d.get("reason", "") for d in body.get("details", []) if str(d.get("@type", "")).endswith("ErrorInfo")]
    return (reasons[0] if reasons else ""), body.get("message") or f"HTTP {reply.status_code}"


class Gateway:
    def __init__(self, url: str, api_key: str, *, connections: int) -> None:
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"x-api-key": api_key},
            timeout=httpx.Timeout(60.0, read=600.0, write=600.0),
            limits=httpx.Limits(max_connections=connections + 1),
        )

    def close(self) -> None:
        self._client.close()

    def existing(self, sha256s: list[str]) -> set[str]:
        """Which of these checksums the key's owner already has."""
        try:
            reply = self._client.post("/v1/assets:findBySha256", json={"sha256s": sha256s})
        except httpx.HTTPError as error:
            raise ImportAborted(f"cannot reach ImgTag at {self._client.base_url}: {error}") from error
        if reply.status_code in (401, 403):
            raise ImportAborted(f"the API key was refused: {_error_text(reply)[1]}")
        if reply.status_code != 200:
            raise ImportAborted(f"asking which images exist failed: {_error_text(reply)[1]}")
        return {match["sha256"] for match in reply.json().get("matches", [])}

    def upload(
        self, candidate: Candidate, archives: Archives, *, collection: str, tags: list[str], skip_analysis: bool
    ) -> tuple[str, str]:
        """("created" | "duplicate" | "failed", why): retried on network errors and busy answers."""
        params: dict[str, str | list[str]] = {"filename": candidate.filename, "expected_sha256": candidate.sha256}
        if collection:
            params["collection"] = collection
        if tags:
            params["tags"] = tags
        if skip_analysis:
            params["skip_analysis"] = "true"
        why = ""
        for attempt in range(1, _RETRIES + 1):
            try:
                reply = self._client.post(
                    "/v1/assets:upload",
                    params=params,
                    content=chunks_of(candidate, archives),
                    headers={"content-type": candidate.content_type},
                )
            except httpx.TransportError as error:
                why = f"{type(error).__name__}: {error}"
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                return "failed", f"cannot read: {error}"
            else:
                if reply.status_code == 200:
                    return "created", ""
                reason, message = _error_text(reply)
                if reply.status_code == 409 and reason == "DUPLICATE_ASSET":
                    return "duplicate", ""
                why = f"{message} ({reason})" if reason else message
                if reply.status_code not in _RETRIED_STATUSES:
                    return "failed", why
            time.sleep(attempt)
        return "failed", why


# ---------------------------------------------------------------------------- the command


def run_import(
    paths: list[Path],
    *,
    url: str,
    api_key: str,
    jobs: int,
    collection: str = "",
    tags: list[str] | None = None,
    skip_analysis: bool = False,
    out: Console | None = None,
    progress_console: Console | None = None,
) -> int:
    """Import `paths`; the exit code (see the module docstring)."""
    out = out or Console(soft_wrap=True)  # one line per failure, whatever the width (logs, grep)
    progress_console = progress_console or Console(stderr=True)
    report = Report()
    archives = Archives()
    with progress_console.status("looking for images ..."):
        candidates = find_candidates(paths, report)
    out.print(
        f"found {len(candidates)} image{'s' if len(candidates) != 1 else ''}"
        + (f" ({report.not_images} other files left out)" if report.not_images else "")
    )
    gateway = Gateway(url, api_key, connections=jobs)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=progress_console,
    )
    try:
        gateway.existing([])  # the server answers and takes the key, before any hashing
        with progress, ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="import") as pool:
            hashing = progress.add_task("checking", total=len(candidates), counts="")
            sending = progress.add_task("importing", total=len(candidates), counts=report.line())
            seen: set[str] = set()
            uploads: list[Future[None]] = []

            def finish(outcome: str, label: str = "", why: str = "") -> None:
                report.count(outcome, label, why)
                progress.update(sending, advance=1, counts=report.line())

            def send(candidate: Candidate) -> None:
                outcome, why = gateway.upload(
                    candidate, archives, collection=collection, tags=tags or [], skip_analysis=skip_analysis
                )
                finish(outcome, candidate.label, why)

            def hashed(candidate: Candidate) -> Candidate | None:
                try:
                    return hash_candidate(candidate, archives)
                except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
                    finish("failed", candidate.label, f"cannot read: {error}")
                    return None
                finally:
                    progress.advance(hashing)

            try:
                for start in range(0, len(candidates), FIND_BATCH):
                    batch = [c for c in pool.map(hashed, candidates[start : start + FIND_BATCH]) if c is not None]
                    there = gateway.existing(sorted({c.sha256 for c in batch})) if batch else set()
                    for candidate in batch:
                        if candidate.sha256 in there:
                            finish("skipped")
                        elif candidate.sha256 in seen:
                            finish("duplicate")  # the same bytes twice in this run: sent once
                        else:
                            seen.add(candidate.sha256)
                            uploads.append(pool.submit(send, candidate))
                wait(uploads)
            except KeyboardInterrupt:
                for upload in uploads:
                    upload.cancel()  # the ones in flight finish; nothing else starts
                raise
            for upload in uploads:
                upload.result()
    except ImportAborted as error:
        out.print(f"[bold red]import stopped:[/] {escape(str(error))}")
        return 2
    except KeyboardInterrupt:
        out.print(f"interrupted: {report.line()}. Run the same command again to import the rest.")
        return 130
    finally:
        gateway.close()
    for label, why in report.failures:
        out.print(f"[red]failed[/] {escape(label)}: {escape(why)}")
    if not candidates:
        out.print("no images found")
    elif report.created == 0 and report.failed == 0:
        out.print(f"nothing new to import: {report.skipped + report.duplicate} images are already in your library")
    out.print(report.line())
    return 1 if report.failed else 0
