"""Signed content URLs: how an <img src> fetches an asset's bytes without a credential.

The URL names the asset, the variant and an expiry, signed with HMAC-SHA256 under a key only the
catalog holds. Expiries fall on window boundaries, so every listing within one window hands out
the same URL and the browser's cache keeps working; a URL lives between one and two windows.
The signature is a capability for those bytes only, and the gateway never logs query strings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from imgtag_catalog.domain.models import Variant
from imgtag_common.errors import PermissionDenied


@dataclass(frozen=True)
class SignedUrls:
    urls: dict[Variant, str]
    expires: int


class ContentSigner:
    def __init__(self, key: bytes, *, window_s: int, clock: Callable[[], float] = time.time) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # copied per signature: the key is set up once
        self._window_s = window_s
        self._clock = clock

    @classmethod
    def from_service_secret(cls, secret: str, *, window_s: int) -> ContentSigner:
        # A key of its own, derived so that no extra secret has to be managed.
        return cls(hmac.new(secret.encode(), b"imgtag content urls v1", hashlib.sha256).digest(), window_s=window_s)

    def _signature(self, asset_id: uuid.UUID, variant: Variant, expires: int) -> str:
        mac = self._mac.copy()
        mac.update(f"{asset_id}|{variant.value}|{expires}".encode())
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def urls(self, asset_id: uuid.UUID, variants: tuple[Variant, ...]) -> SignedUrls:
        expires = (int(self._clock()) // self._window_s + 2) * self._window_s
        urls = {}
        for variant in variants:
            # Every part is URL-safe as it is (an upper-case word, digits, unpadded base64url).
            signature = self._signature(asset_id, variant, expires)
            query = f"variant={variant.value.upper()}&expires={expires}&signature={signature}"
            urls[variant] = f"/v1/assets/{asset_id}/signedContent?{query}"
        return SignedUrls(urls=urls, expires=expires)

    def seconds_left(self, expires: int) -> int:
        return int(expires - self._clock())

    def verify(self, asset_id: uuid.UUID, variant: Variant, expires: int, signature: str) -> None:
        expected = self._signature(asset_id, variant, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise PermissionDenied("this content URL's signature is not valid", reason="INVALID_SIGNATURE")
        if expires < self._clock():
            raise PermissionDenied("this content URL has expired; reload the page", reason="URL_EXPIRED")
