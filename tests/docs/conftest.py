"""What the browser tests share: the built site served on 127.0.0.1."""

import functools
import http.server
import pathlib
import threading

import pytest

SITE = pathlib.Path(__file__).resolve().parents[2] / "site"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """The root URL of ``site/`` served by a plain static file server on a free port."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
