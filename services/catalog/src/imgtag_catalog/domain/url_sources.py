"""Which URLs an import may fetch (no I/O here; adapters/url_fetch.py fetches).

An import from URLs makes the catalog's own server open connections, so a URL must not become
a way to reach what only the server can reach: the cloud metadata service (169.254.169.254), the
database, the services' gRPC ports, the LAN. Only http and https to public addresses are
fetched; every address a name resolves to is checked (and the connection then goes to the
address that was checked, so a second DNS answer cannot swap in another), and every redirect is
checked again. An admin who imports from a NAS on the LAN names its network in
IMGTAG_CATALOG_IMPORT_URL_ALLOWED_NETWORKS."""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from imgtag_common.errors import InvalidArgument

MAX_URL_LENGTH = 2048
MAX_URLS = 10_000
MAX_REDIRECTS = 5

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ImportUrl:
    """A URL that passed the syntax checks: where to connect and what to call the file."""

    url: str
    scheme: str  # "http" or "https"
    host: str  # a name or an address, without brackets
    port: int
    filename: str  # the last path segment, decoded; "" when the path has none


@dataclass(frozen=True)
class FetchedImage:
    """A URL's answer being read: the name to give the file and its body in chunks."""

    filename: str
    chunks: AsyncIterator[bytes]


def parse_networks(texts: Iterable[str]) -> tuple[IpNetwork, ...]:
    """The allowed networks of the setting (CIDR or single addresses); a bad entry is a
    ValueError at start-up, not a surprise at import time."""
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts if text.strip())


def check_url(url: str) -> ImportUrl:
    """INVALID_ARGUMENT (reason BAD_URL) unless `url` is an absolute http(s) URL without
    credentials; the addresses are checked once resolved (`check_address`)."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"a URL may be at most {MAX_URL_LENGTH} characters", reason="BAD_URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise InvalidArgument(f"not a valid URL: {error}", reason="BAD_URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument("only http and https URLs can be imported", reason="BAD_URL")
    if not parts.hostname:
        raise InvalidArgument("the URL names no host", reason="BAD_URL")
    if parts.username is not None or parts.password is not None:
        # They would end up in the job's report and logs.
        raise InvalidArgument("URLs with a user name or password are not accepted", reason="BAD_URL")
    if any(ch.isspace() or not ch.isprintable() for ch in url.strip()):
        raise InvalidArgument("the URL contains spaces or control characters", reason="BAD_URL")
    filename = posixpath.basename(unquote(parts.path))
    return ImportUrl(
        url=url.strip(),
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        filename=filename,
    )


def check_address(host: str, address: IpAddress, allowed: Sequence[IpNetwork]) -> None:
    """INVALID_ARGUMENT (reason URL_ADDRESS_NOT_ALLOWED) for an address that is not public
    (loopback, private, link-local, multicast, reserved ...) and not in an allowed network."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in allowed):
        return
    if address.is_global and not address.is_multicast:
        return
    raise InvalidArgument(
        f"{host} resolves to {address}, which is not a public address; an admin can allow its "
        "network with IMGTAG_CATALOG_IMPORT_URL_ALLOWED_NETWORKS",
        reason="URL_ADDRESS_NOT_ALLOWED",
    )


def check_urls(urls: Sequence[str]) -> None:
    """The request as a whole: 1 to MAX_URLS URLs (each URL is checked on its own when its turn
    comes, so one bad URL is one refused entry)."""
    if not urls:
        raise InvalidArgument("name at least one URL to import", reason="NO_URLS")
    if len(urls) > MAX_URLS:
        raise InvalidArgument(f"an import may name at most {MAX_URLS} URLs", reason="TOO_MANY_URLS")
