"""Account rules without a database: names, emails and passwords after NFKC, and the failure
counter that rate limits logins and API keys."""

from __future__ import annotations

import pytest

from imgtag_auth.domain.identity import PasswordPolicy, clean_email, clean_username, email_key, username_key
from imgtag_auth.domain.ratelimit import FailureLimiter
from imgtag_common.errors import InvalidArgument, ResourceExhausted


def test_username_keys_fold_case_and_width() -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "Alice")
    assert username_key("Alice") == username_key("alice") == username_key(fullwidth) == "alice"
    assert clean_username(fullwidth) == "Alice"


@pytest.mark.parametrize("bad", ["al", "a" * 33, "a b", "\u0430lice", "al/ice", "al\nice", ""])
def test_bad_usernames(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        clean_username(bad)


def test_emails_compare_case_insensitively_and_must_be_ascii() -> None:
    assert email_key("Bob@Example.COM") == email_key("bob@example.com")
    assert clean_email(" bob@example.com ") == "bob@example.com"
    for bad in ("bob", "bob@example", "b ob@example.com", "b\u00f6b@example.com", "a@b." + "c" * 300):
        with pytest.raises(InvalidArgument):
            clean_email(bad)


def test_password_policy() -> None:
    policy = PasswordPolicy(min_length=10, max_length=20)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "password12")
    assert policy.clean(fullwidth) == "password12"
    for bad, reason in (
        ("", "PASSWORD_REQUIRED"),
        ("123456789", "PASSWORD_TOO_SHORT"),
        ("x" * 21, "PASSWORD_TOO_LONG"),
        ("x" * 10_000, "PASSWORD_TOO_LONG"),
        ("abcdefghij\x00", "INVALID_PASSWORD"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            policy.clean(bad)
        assert caught.value.reason == reason


def test_failures_are_counted_in_a_sliding_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=3, window_s=10, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("ip:1")
        limiter.record("ip:1")
    with pytest.raises(ResourceExhausted) as caught:
        limiter.check("ip:1")
    assert caught.value.reason == "TOO_MANY_ATTEMPTS"
    limiter.check("ip:2")  # others are not affected
    now[0] = 10.5
    limiter.check("ip:1")  # the window moved on
    limiter.record("ip:1")
    limiter.reset("ip:1")
    limiter.check("ip:1")
