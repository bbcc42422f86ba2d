"""A plain web server the tests control: the other end of a web-download, able to stall mid-body.

It serves ``files`` (name -> bytes) on a free loopback port. ``hold()`` makes every response stop
after its first ``hold_after`` bytes until ``release()``: an import is then observably mid-way for
as long as a test needs, with no timing involved.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WebServer:
    def __init__(self, hold_after: int = 1 << 20) -> None:
        self.files: dict[str, bytes] = {}
        self.hold_after = hold_after
        self.requests: list[str] = []
        self.stalled = 0  # responses waiting for release() right now
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        web = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                web.requests.append(name)
                body = web.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if not web._open.is_set():
                        self.wfile.write(body[: web.hold_after])
                        self.wfile.flush()
                        with web._lock:
                            web.stalled += 1
                        web._open.wait()
                        with web._lock:
                            web.stalled -= 1
                        self.wfile.write(body[web.hold_after :])
                    else:
                        self.wfile.write(body)
                except OSError:  # the client went away (a crash test killed it)
                    pass

        return Handler


@contextmanager
def web_server(hold_after: int = 1 << 20) -> Iterator[WebServer]:
    server = WebServer(hold_after)
    try:
        yield server
    finally:
        server.close()
