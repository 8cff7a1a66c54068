"""The client follows ``/v1/audit``'s pages to the last one, over real HTTP: the CLI's ``audit``
(and its CSV) is every row of the range, however many pages the API splits it into."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.credentials import Credentials

from eks_jit.client import Client
from tests.support import FakeClock

PAGES = {None: (["g1", "g2"], "t1"), "t1": (["g3", "g4"], "t2"), "t2": (["g5"], None)}


class Pages(BaseHTTPRequestHandler):
    seen: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self.seen.append(query)
        ids, token = PAGES[query.get("next", [None])[0]]
        body = {"rows": [{"grant": {"id": i}} for i in ids]} | ({"next": token} if token else {})
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    Pages.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_client_reads_every_page_with_the_same_range(api: str) -> None:
    client = Client(api, region="eu-west-1", credentials=Credentials("AKIDEXAMPLE", "secret"))
    day = FakeClock().start.date()  # any range: the fake API only echoes it back
    since, until = day.isoformat(), (day + timedelta(days=1)).isoformat()
    rows = client.audit(since, until, page_size=2)
    assert [r["grant"]["id"] for r in rows] == ["g1", "g2", "g3", "g4", "g5"]
    assert [q.get("next") for q in Pages.seen] == [None, ["t1"], ["t2"]]
    assert all(q["since"] == [since] and q["until"] == [until] and q["limit"] == ["2"] for q in Pages.seen)
