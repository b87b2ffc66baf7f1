"""Which URLs an import may fetch: the syntax checks and the address rules."""

from __future__ import annotations

import ipaddress

import pytest

from imgtag_catalog.domain.url_sources import MAX_URLS, check_address, check_url, check_urls, parse_networks
from imgtag_common.errors import InvalidArgument


def test_a_plain_https_url_names_its_host_port_and_file() -> None:
    url = check_url(" https://photos.example.org/albums/2024/Beach%20Day.JPG?size=full ")
    assert (url.scheme, url.host, url.port, url.filename) == ("https", "photos.example.org", 443, "Beach Day.JPG")
    assert check_url("http://[2001:db8::1]:8080/a.png").host == "2001:db8::1"
    assert check_url("http://example.org").filename == ""


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/a.jpg",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "/relative/path.jpg",
        "http://",
        "http://user:pass@example.org/a.jpg",
        "http://user@example.org/a.jpg",
        "http://example.org:99999/a.jpg",
        "http://exa mple.org/a.jpg",
        "http://example.org/a\x00.jpg",
        "https://example.org/" + "a" * 2100,
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_url(url)
    assert refused.value.reason == "BAD_URL"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.5",
        "192.168.1.20",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_address("host.example", ipaddress.ip_address(address), ())
    assert refused.value.reason == "URL_ADDRESS_NOT_ALLOWED"
    assert "IMGTAG_CATALOG_IMPORT_URL_ALLOWED_NETWORKS" in refused.value.message


def test_public_addresses_pass_and_an_admin_can_allow_a_network() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        check_address("example.org", ipaddress.ip_address(address), ())
    lan = parse_networks(["192.168.1.0/24", " ", "10.0.0.7"])
    check_address("nas.local", ipaddress.ip_address("192.168.1.20"), lan)
    check_address("nas.local", ipaddress.ip_address("10.0.0.7"), lan)
    with pytest.raises(InvalidArgument):
        check_address("other", ipaddress.ip_address("192.168.2.20"), lan)
    with pytest.raises(ValueError):
        parse_networks(["not-a-network"])


def test_a_request_names_one_to_ten_thousand_urls() -> None:
    with pytest.raises(InvalidArgument) as none:
        check_urls([])
    assert none.value.reason == "NO_URLS"
    with pytest.raises(InvalidArgument) as many:
        check_urls(["https://example.org/a.jpg"] * (MAX_URLS + 1))
    assert many.value.reason == "TOO_MANY_URLS"
    check_urls(["https://example.org/a.jpg"])
