"""One logger setup: JSON lines carrying the service name and the current request id."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

# Set by the server interceptor for the duration of one RPC; read by every log line.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# A caller may choose its request id if it is at most 64 characters of A-Z a-z 0-9 . _ -, so that
# no header or log line ever carries a caller's arbitrary text. The gateway renders the same rule.
REQUEST_ID_MAX_CHARS = 64
REQUEST_ID_CHARS = "A-Za-z0-9._-"  # a character class body that means the same to Python and Lua
_WELL_FORMED_REQUEST_ID = re.compile(f"[{REQUEST_ID_CHARS}]{{1,{REQUEST_ID_MAX_CHARS}}}")


def accepted_request_id(offered: str | None) -> str:
    """The caller's request id if it is short and well formed, otherwise a fresh one."""
    if offered and _WELL_FORMED_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = request_id_var.get()
        return True


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    """Route all logging to stderr, as JSON (default) or plain text for humans."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    if json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(service)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
