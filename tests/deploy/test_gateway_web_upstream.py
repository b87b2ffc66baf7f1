"""The gateway as deployed passes every path that is not the API to the web bundle's server and
keeps its edge rules for those answers too (security headers, no Envoy internals); API paths
still go to the services. A real Envoy in front of a small local HTTP server standing in for the
web image's nginx."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from imgtag_dev import gateway
from imgtag_dev.testing import standalone_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("web")
    (root / "index.html").write_text("<!doctype html><title>ImgTag</title>")
    (root / "assets").mkdir()
    (root / "assets" / "app-1234.js").write_text("console.log('app')")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_non_api_paths_come_from_the_web_server_with_the_edge_headers(web_server: int) -> None:
    web = gateway.Upstream("web", "127.0.0.1", web_server)
    with standalone_gateway({}, web_upstream=web) as edge:
        for path, body in (("/index.html", "<title>ImgTag</title>"), ("/assets/app-1234.js", "console.log")):
            reply = httpx.get(edge.url + path, timeout=10)
            assert reply.status_code == 200 and body in reply.text
            assert len(reply.headers.get_list("content-security-policy")) == 1
            assert reply.headers["x-content-type-options"] == "nosniff"
        # API paths are never passed to the web server: no service listens here, so a JSON 503.
        api = httpx.get(edge.url + "/v1/assets", timeout=10)
        assert api.status_code in (401, 503) and api.headers["content-type"].startswith("application/json")
        internal = httpx.post(edge.url + "/imgtag.storage.v1.StorageService/ReadObject", timeout=10)
        assert internal.status_code == 404
