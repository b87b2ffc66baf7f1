"""The rules for usernames, emails, display names and passwords.

Everything is normalized with Unicode NFKC first, so "alice" typed in full-width letters
(U+FF41...) and "alice" are the same name, and a password typed on a phone and on a laptop
hashes the same. Usernames and emails are then compared case-insensitively through their
`*_key`. Usernames admit only ASCII letters, digits and `_.-`, so a Cyrillic "a" (U+0430) that
looks like a Latin one cannot make a look-alike of someone else's name."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from imgtag_common.errors import InvalidArgument

_USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# Deliberately simple: one "@", no spaces, a dot in the domain. Delivery proves the rest.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_MAX_EMAIL = 254
_MAX_DISPLAY_NAME = 64


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def username_key(username: str) -> str:
    return nfkc(username).strip().casefold()


def email_key(email: str) -> str:
    return nfkc(email).strip().casefold()


def login_key(login: str) -> str:
    """A login is a username or an email; both keys are made the same way."""
    return nfkc(login).strip().casefold()


def clean_username(username: str) -> str:
    name = nfkc(username).strip()
    if not _USERNAME.fullmatch(name):
        raise InvalidArgument(
            "a username is 3-32 characters of A-Z, a-z, 0-9, '_', '.' and '-'", reason="INVALID_USERNAME"
        )
    return name


def clean_email(email: str) -> str:
    address = nfkc(email).strip()
    if len(address) > _MAX_EMAIL or not address.isascii() or not _EMAIL.fullmatch(address):
        raise InvalidArgument(
            "the email address is not valid (ASCII, like name@example.com; international domains in punycode)",
            reason="INVALID_EMAIL",
        )
    return address


def clean_display_name(display_name: str, *, fallback: str) -> str:
    name = "".join(ch for ch in nfkc(display_name) if ch.isprintable()).strip()
    if len(name) > _MAX_DISPLAY_NAME:
        raise InvalidArgument(
            f"a display name is at most {_MAX_DISPLAY_NAME} characters", reason="INVALID_DISPLAY_NAME"
        )
    return name or fallback


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int
    max_length: int

    def clean(self, password: str) -> str:
        """The normalized password to hash, or INVALID_ARGUMENT saying which rule it breaks."""
        # Refuse absurd input before normalizing it (NFKC can grow a string up to 18x).
        if len(password) > self.max_length * 4:
            raise self._too_long()
        normalized = nfkc(password)
        if not normalized:
            raise InvalidArgument("a password is required", reason="PASSWORD_REQUIRED")
        if len(normalized) < self.min_length:
            raise InvalidArgument(
                f"a password needs at least {self.min_length} characters", reason="PASSWORD_TOO_SHORT"
            )
        if len(normalized) > self.max_length:
            raise self._too_long()
        if any(unicodedata.category(ch) == "Cc" for ch in normalized):
            raise InvalidArgument("a password cannot contain control characters", reason="INVALID_PASSWORD")
        return normalized

    def _too_long(self) -> InvalidArgument:
        return InvalidArgument(f"a password has at most {self.max_length} characters", reason="PASSWORD_TOO_LONG")
