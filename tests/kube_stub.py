"""A tiny Kubernetes API server for recording what real kubectl sends.

It serves just enough discovery (``/api``, ``/apis``, ``apps/v1``) and one stored Deployment
for ``kubectl rollout restart`` to run against it, and records every write request (method,
path, content type, body). The precedent is Teleport's mock API server for its kube proxy
tests: a small emulated upstream fed with the documents kubectl asks for.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")

DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"]}
        ],
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            {
                "name": "deployments",
                "singularName": "deployment",
                "namespaced": True,
                "kind": "Deployment",
                "verbs": ["get", "list", "watch", "patch", "update"],
                "shortNames": ["deploy"],
            }
        ],
    },
}


def kubectl() -> str:
    """The kubectl to drive: $EKS_JIT_KUBECTL, the newest google-cloud-cli build, or PATH's.
    Skips the test when there is none, unless EKS_JIT_REQUIRE_KUBECTL is set (CI sets it)."""
    found = os.environ.get("EKS_JIT_KUBECTL") or next(
        (str(p) for p in sorted(KUBECTL_DIR.glob("kubectl.1.*"), key=lambda p: int(p.name.split(".")[-1]))[-1:]),
        None,
    )
    found = found or shutil.which("kubectl")
    if not found:
        if os.environ.get("EKS_JIT_REQUIRE_KUBECTL"):
            raise RuntimeError("kubectl is required here (EKS_JIT_REQUIRE_KUBECTL) but was not found")
        pytest.skip("kubectl not installed")
    return found


@dataclass
class Recorded:
    method: str
    path: str
    content_type: str
    body: Any


@dataclass
class KubeStub:
    objects: dict[str, dict[str, Any]]
    writes: list[Recorded] = field(default_factory=list)
    url: str = ""

    def kubeconfig(self, directory: Path, namespace: str = "default") -> Path:
        path = directory / "kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
                    "users": [{"name": "stub", "user": {"token": "stub"}}],
                    "contexts": [
                        {"name": "stub", "context": {"cluster": "stub", "user": "stub", "namespace": namespace}}
                    ],
                    "current-context": "stub",
                }
            )
        )
        return path


def _handler(stub: KubeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, payload: Any, code: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _path(self) -> str:
            return self.path.split("?", 1)[0]

        def do_GET(self) -> None:
            path = self._path()
            if path in DISCOVERY:
                return self._send(DISCOVERY[path])
            if path in stub.objects:
                return self._send(stub.objects[path])
            return self._send({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}, 404)

        def _write(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            stub.writes.append(Recorded(self.command, self.path, self.headers.get("Content-Type", ""), body))
            found = stub.objects.get(self._path())
            self._send(copy.deepcopy(found) if found else {"kind": "Status", "code": 404}, 200 if found else 404)

        do_PATCH = do_PUT = do_POST = _write

    return Handler


@contextmanager
def serve(objects: dict[str, dict[str, Any]]) -> Iterator[KubeStub]:
    stub = KubeStub(objects=objects)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def run_kubectl(*args: str, kubeconfig: Path | None = None, stdin: str | None = None) -> str:
    command = [kubectl(), *args]
    if kubeconfig is not None:
        command += ["--kubeconfig", str(kubeconfig)]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {result.stderr}")
    return result.stdout
