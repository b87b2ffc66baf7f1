"""Fetching an import's URLs over HTTP(S) with httpx, under the rules of domain/url_sources.py:
the name is resolved here, every address is checked, and the connection goes to the checked
address (the Host header and TLS server name stay the URL's, so certificates are verified as
usual). Redirects are followed by hand, each one checked again. Failures become entry errors
(the import goes on with the next URL): NOT_FOUND for 404 and 410, FAILED_PRECONDITION for
other refusals and for hosts that stay unreachable after one retry."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urljoin

import httpx

from imgtag_catalog.domain.url_sources import (
    MAX_REDIRECTS,
    FetchedImage,
    ImportUrl,
    IpAddress,
    IpNetwork,
    check_address,
    check_url,
)
from imgtag_common.errors import FailedPrecondition, NotFound, ResourceExhausted

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_RETRY_AFTER_S = 1.0


class UrlFetcher:
    def __init__(
        self,
        *,
        allowed_networks: Sequence[IpNetwork],
        timeout_s: float,
        chunk_bytes: int,
        max_bytes: int,
    ) -> None:
        self._allowed = tuple(allowed_networks)
        self._chunk_bytes = chunk_bytes
        self._max_bytes = max_bytes
        # No proxies from the environment (the connection must go to the checked address), no
        # automatic redirects (each is checked), no cookies kept between URLs.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "ImgTag-import/1.0", "accept": "image/*,*/*;q=0.5"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[FetchedImage]:
        """The image at `url` (after redirects), its body streamed; entry errors as documented."""
        response, target = await self._get_following_redirects(check_url(url))
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise ResourceExhausted(
                    f"{url} is {int(declared)} bytes; a file may be at most {self._max_bytes}",
                    reason="UPLOAD_TOO_LARGE",
                )
            yield FetchedImage(filename=target.filename, chunks=self._body(response, url))
        finally:
            await response.aclose()

    async def _get_following_redirects(self, target: ImportUrl) -> tuple[httpx.Response, ImportUrl]:
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._get_with_one_retry(target)
            if not response.is_redirect:
                self._refuse_failure(response, target)
                return response, target
            location = response.headers.get("location", "")
            await response.aclose()
            target = check_url(urljoin(target.url, location))
        raise FailedPrecondition(f"more than {MAX_REDIRECTS} redirects", reason="TOO_MANY_REDIRECTS")

    async def _get_with_one_retry(self, target: ImportUrl) -> httpx.Response:
        for attempt in (1, 2):
            try:
                response = await self._get(target)
            except httpx.HTTPError as error:
                if attempt == 2:
                    raise FailedPrecondition(
                        f"{target.host} could not be reached: {type(error).__name__} {error}".strip(),
                        reason="URL_UNREACHABLE",
                    ) from None
            else:
                if response.status_code not in _TRANSIENT_STATUS or attempt == 2:
                    return response
                await response.aclose()
            await asyncio.sleep(_RETRY_AFTER_S)
        raise AssertionError("unreachable")

    async def _get(self, target: ImportUrl) -> httpx.Response:
        address = await self._checked_address(target)
        host_header = target.host if ":" not in target.host else f"[{target.host}]"
        if target.port != (443 if target.scheme == "https" else 80):
            host_header += f":{target.port}"
        request = self._client.build_request(
            "GET",
            httpx.URL(target.url).copy_with(host=str(address)),
            headers={"host": host_header},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        return await self._client.send(request, stream=True)

    async def _checked_address(self, target: ImportUrl) -> IpAddress:
        """The first address of the host's, once every one of them passed the check."""
        try:
            addresses = [ipaddress.ip_address(target.host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            except socket.gaierror as error:
                raise FailedPrecondition(
                    f"{target.host} does not resolve: {error.strerror}", reason="URL_UNREACHABLE"
                ) from None
            addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
        for address in addresses:
            check_address(target.host, address, self._allowed)
        return addresses[0]

    @staticmethod
    def _refuse_failure(response: httpx.Response, target: ImportUrl) -> None:
        if response.is_success:
            return
        if response.status_code in (404, 410):
            raise NotFound(f"{target.url} answered HTTP {response.status_code}", reason="URL_NOT_FOUND")
        raise FailedPrecondition(f"{target.url} answered HTTP {response.status_code}", reason="URL_FETCH_FAILED")

    async def _body(self, response: httpx.Response, url: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(self._chunk_bytes):
                yield chunk
        except httpx.HTTPError as error:
            raise FailedPrecondition(
                f"reading {url} failed: {type(error).__name__} {error}".strip(), reason="URL_UNREACHABLE"
            ) from None
