"""A local vPIC: an HTTP server that answers with NHTSA's real recorded responses.

Shared by the vPIC client tests and the ingestion tests (pytest puts tests/support on
the import path).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vpic"
F150_FILE = "decode-vin-values_1FTMW1T88MFA00001.wrapped.json"
TIGUAN_2026_FILE = "decode-vin-values_3VV3B7AXXNM077525_2026.json"
BATCH_ERRORS_FILE = "decode-vin-values-batch_errors.wrapped.json"
PARTIAL_VIN_FILE = "decode-vin-values_partial-vin_error6.wrapped.json"

F150_VIN = "1FTMW1T88MFA00001"
TIGUAN_VIN = "3VV3B7AXXNM077525"
BMW_PARTIAL_VIN = "5UXWX7C5*BA"
TESLA_PARTIAL_VIN = "5YJSA3DS*EF"
HONDA_VIN = "1HGCM82633A004352"

CLIENT_TIMEOUT = 0.2
SLOW_ANSWER_SECONDS = 0.6


def recorded_content(file_name: str) -> dict[str, Any]:
    document = json.loads((FIXTURES / file_name).read_text())
    if "content" not in document:
        return dict(document)
    content = document["content"]
    return json.loads(content) if isinstance(content, str) else dict(content)


def recorded_result(file_name: str, index: int = 0) -> dict[str, Any]:
    return dict(recorded_content(file_name)["Results"][index])


# DecodeVinValues recordings, by the VIN in the request path.
SINGLE_RECORDINGS = {
    F150_VIN: recorded_content(F150_FILE),
    TIGUAN_VIN: recorded_content(TIGUAN_2026_FILE),
    BMW_PARTIAL_VIN: recorded_content(PARTIAL_VIN_FILE),
}
# Every recorded decode result, for assembling batch answers.
RECORDED_RESULTS = {
    result["VIN"]: result
    for content in [*SINGLE_RECORDINGS.values(), recorded_content(BATCH_ERRORS_FILE)]
    for result in content["Results"]
}
XML_ANSWER = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b"<Response><Count>0</Count><Message>Results returned successfully</Message></Response>"
)


def result_for(vin: str) -> dict[str, Any]:
    if vin in RECORDED_RESULTS:
        return dict(RECORDED_RESULTS[vin])
    # A VIN nobody recorded gets the F-150's result under its own VIN: those tests are
    # about the requests, not the decoding.
    return {**RECORDED_RESULTS[F150_VIN], "VIN": vin}


class FakeVpic:
    """State of the fake vPIC: how it should answer, and what it was asked."""

    def __init__(self) -> None:
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        self.mode = "ok"
        # Modes for the next requests, used before `mode`.
        self.next_modes: deque[str] = deque()
        self.retry_after = "0"
        self.requests: list[tuple[str, str, str]] = []  # method, path with query, body
        self.batch_sizes: list[int] = []

    def take_mode(self) -> str:
        return self.next_modes.popleft() if self.next_modes else self.mode


class FakeVpicServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeVpic) -> None:
        super().__init__(("127.0.0.1", 0), FakeVpicHandler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A slow answer's client has hung up by the time it is written; that is the point.
        pass


class FakeVpicHandler(BaseHTTPRequestHandler):
    server: FakeVpicServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if not self._answer_trouble("POST", body):
            self._answer_batch(body)

    def do_GET(self) -> None:
        if not self._answer_trouble("GET", ""):
            self._answer_single()

    def _answer_trouble(self, method: str, body: str) -> bool:
        state = self.server.state
        state.requests.append((method, self.path, body))
        mode = state.take_mode()
        if mode == "slow":
            time.sleep(SLOW_ANSWER_SECONDS)
        elif mode == "500":
            self._send(500, b"<html>Internal Server Error</html>", "text/html")
        elif mode == "429":
            self._send(429, b"Too Many Requests", "text/plain", {"Retry-After": state.retry_after})
        elif mode == "garbage":
            self._send(200, b'{"Count": 1, "Results": [{"VIN": ', "application/json")
        elif mode == "no results":
            self._send_json({**recorded_content(BATCH_ERRORS_FILE), "Count": 0, "Results": []})
        return mode in {"500", "429", "garbage", "no results"}

    def _answer_batch(self, body: str) -> None:
        path = urlsplit(self.path).path
        if path != "/api/vehicles/DecodeVINValuesBatch/":
            self._send(404, b"Not Found", "text/plain")
            return
        form = {key.lower(): values[-1] for key, values in parse_qs(body).items()}
        if form.get("format", "").lower() != "json":
            # Like vPIC: without format=json in the body, the answer is XML.
            self._send(200, XML_ANSWER, "application/xml")
            return
        vins = [item.split(",")[0].strip() for item in form.get("data", "").split(";")]
        vins = [vin for vin in vins if vin]
        self.server.state.batch_sizes.append(len(vins))
        results = [result_for(vin.upper()) for vin in vins]
        envelope = recorded_content(BATCH_ERRORS_FILE)
        self._send_json({**envelope, "Count": len(results), "Results": results})

    def _answer_single(self) -> None:
        url = urlsplit(self.path)
        prefix = "/api/vehicles/DecodeVinValues/"
        if not url.path.startswith(prefix):
            self._send(404, b"Not Found", "text/plain")
            return
        if parse_qs(url.query).get("format") != ["json"]:
            self._send(200, XML_ANSWER, "application/xml")
            return
        vin = url.path.removeprefix(prefix).upper()
        recording = SINGLE_RECORDINGS.get(vin)
        if recording is None:
            recording = {**recorded_content(F150_FILE), "Results": [result_for(vin)]}
        self._send_json(recording)

    def _send_json(self, document: dict[str, Any]) -> None:
        self._send(200, json.dumps(document).encode(), "application/json; charset=utf-8")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class RecordedSleeps:
    """An injectable `sleep` that returns at once and remembers how long it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@contextmanager
def running_fake_vpic() -> Iterator[FakeVpic]:
    """A fake vPIC on a free loopback port; its `base_url` goes where vPIC's would."""
    state = FakeVpic()
    server = FakeVpicServer(state)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
