"""uvicorn's httptools protocol, accepting request lines with raw UTF-8 bytes as Swift's eventlet server does.

Clients (and Swift's own tests) may send an object name as raw UTF-8 in the request line
(``PUT /v1/AUTH_x/c/café HTTP/1.1``); the llhttp parser refuses any byte above 0x7F there with a 400.
Before a request's first line reaches the parser, each such byte is percent-encoded, which is what a
careful client would have sent: the Swift routes then decode the path as UTF-8, and invalid UTF-8
answers 412 as in Swift. Nothing else of the request is touched; one ``find`` per request is the cost.
"""

from __future__ import annotations

import re
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_REQUEST_LINE = 65536  # longer lines go to the parser as they are (it refuses them)
_HIGH = re.compile(rb"[\x80-\xff]")


class Utf8RequestLineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._line_start = True  # the next bytes begin a request
        self._pending = b""

    def data_received(self, data: bytes) -> None:
        if self._line_start:
            data = self._pending + data
            end = data.find(b"\r\n")
            if end < 0 and len(data) < MAX_REQUEST_LINE:
                self._pending = data  # wait for the whole request line
                return
            self._pending = b""
            self._line_start = False
            line = data[:end] if end >= 0 else data
            if _HIGH.search(line):
                data = _HIGH.sub(lambda m: b"%%%02X" % m.group()[0], line) + (data[end:] if end >= 0 else b"")
        super().data_received(data)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._line_start = True
