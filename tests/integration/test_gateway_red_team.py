"""Red team of the data-path gateway: requests an attacker with a narrow grant (``rollout-restart`` on
``payments``), a session-bound grant or no grant sends to get more than the grant gives.

Each test drives the real gateway over HTTPS in front of the emulated API (the ``through`` fixture of
test_gateway.py) and checks what reached the upstream (``through.api.cluster.seen``), not only the
answer. NOTES-red.md lists every attack tried, the refused ones too.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest

from eks_jit.server.domain.recording import CommandOutcome
from tests.integration import test_gateway
from tests.integration.test_gateway import CLUSTER, KEY, Through, datetime_of, deployment, running
from tests.integration.test_gateway_mode import RESTART, write_config
from tests.support import ADMIN

DEPLOYMENT = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
RESTARTED = b'{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"now"}}}}}'
EVIL = b'{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"evil:1"}]}}}}'
SMP = "application/strategic-merge-patch+json"

through = test_gateway.through  # the fixture: the gateway over HTTPS in front of the emulated API


def seen_writes(t: Through) -> list[Any]:
    return [s for s in t.api.cluster.seen if s.method not in ("GET", "HEAD")]


def refusals(t: Through, grant: dict[str, Any]) -> list[Any]:
    return [c for c in t.log.commands(grant["id"])[0] if c.outcome is CommandOutcome.REFUSED]


def raw(t: Through, request: bytes) -> bytes:
    """One request sent byte for byte over TLS (no client library normalising it first)."""
    context = ssl.create_default_context(cadata=t.gateway.server.ca_pem)
    host, port = t.gateway.url.removeprefix("https://").rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname=host) as tls,
    ):
        tls.sendall(request)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer


# -- a scope whose rule narrows *updates* (the example has patch only): PUT is judged against the stored object


@pytest.fixture
def through_update(tmp_path: Path) -> Iterator[Through]:
    """``through`` with ``rollout-restart`` also allowing ``update`` of deployments (same only_changes)."""
    configs = {}
    for mode in ("entry", "gateway"):
        path = write_config(tmp_path / mode, mode)
        text = path.read_text()
        narrowed = "        verbs: [get, list, watch, patch]\n"
        assert narrowed in text
        path.write_text(text.replace(narrowed, "        verbs: [get, list, watch, patch, update]\n", 1))
        configs[mode] = path
    with running(tmp_path, configs) as t:
        yield t


def test_a_put_with_a_key_twice_is_refused(through_update: Through) -> None:
    """Python's json keeps the last ``spec``, Go's decoder merges both into the struct (a field only
    the first sets survives): judged by the last, the API server would apply the first's extra fields."""
    t = through_update
    t.grant(RESTART)
    stored = deployment(t)
    evil = {"template": {"spec": {"hostNetwork": True, "serviceAccountName": "cluster-admin-sa"}}}
    body = ('{"spec":' + json.dumps(evil) + "," + json.dumps(stored)[1:]).encode()
    assert json.loads(body) == stored  # what a last-wins reader sees: no change at all
    answer = t.http("PUT", DEPLOYMENT, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 403 and "twice" in answer.json()["message"], answer.text
    assert not seen_writes(t)


def test_a_put_the_rule_allows_still_passes(through_update: Through) -> None:
    """The control for the test above: the same PUT path with a well-formed body is forwarded."""
    t = through_update
    t.grant(RESTART)
    assert t.http("PATCH", DEPLOYMENT, content=RESTARTED, headers={"content-type": SMP}).status_code == 200
    t.api.cluster.clear_seen()
    stored = deployment(t)
    stored["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "later"
    answer = t.http(
        "PUT", DEPLOYMENT, content=json.dumps(stored).encode(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 405, answer.text
    assert [s.method for s in seen_writes(t)] == ["PUT"]  # the emulated API has no PUT: it answers 405


@pytest.mark.parametrize("kind", ["application/merge-patch+json", SMP, "application/json-patch+json"])
def test_a_deeply_nested_patch_is_refused_not_a_crash(through: Through, kind: str) -> None:
    """Python's decoder (and the walk over a merge patch) recurse: a 3 MiB body nested deep enough
    raised RecursionError, an unrecorded 500. It is a 403 change_not_narrowable, recorded."""
    grant = through.grant(RESTART)
    depth = 5000
    body = (
        ("[" * depth + "]" * depth)
        if kind.startswith("application/json-patch")
        else '{"a":' * depth + "1" + "}" * depth
    )
    answer = through.http("PATCH", DEPLOYMENT, content=body.encode(), headers={"content-type": kind})
    assert answer.status_code == 403 and answer.json()["kind"] == "Status", answer.text
    assert not seen_writes(through)
    assert refusals(through, grant)


def test_a_non_resource_path_is_forwarded_as_it_was_authorized(through: Through) -> None:
    """``/api/v1%3Fx`` is discovery (``/api/<version>``) to the gateway; forwarded decoded, the ``?``
    cut the path upstream (``/api/v1``, query ``x``): what was checked was not what was sent."""
    through.grant(RESTART)
    answer = through.http("GET", "/api/v1%3Fx=1")
    assert answer.status_code in (200, 404), answer.text
    seen = through.api.cluster.seen[-1]
    assert (unquote(seen.path), seen.query) == ("/api/v1?x=1", "")


# -- attacks the gateway refuses, with nothing reaching the upstream and the refusal recorded ---------------


REFUSED_PATHS = [
    # encodings, dot segments, empty segments
    ("GET", "/api/v1/namespaces/payments%2F..%2Forders/pods", 400),
    ("GET", "/api/v1/namespaces/payments/%2e%2E/orders/pods", 400),
    ("GET", "/api/v1/namespaces/payments/pods/", 400),
    ("GET", "/api/v1/namespaces/payments/pods/x%00", 400),
    ("GET", "/api/v1/namespaces/payments/pods/x%5C..%5Csecrets", 400),
    ("GET", "/api/v1/namespaces/payments/pods;x=y", 400),
    ("GET", "/api/v1/namespaces/payments/pods/%zz", 400),
    ("GET", "/api/v1/namespaces/payments/pods/%C0%AF", 400),  # overlong UTF-8 '/'
    ("GET", "/api/v1/namespaces/payments/namespaces/orders/pods", 400),
    ("GET", "/api/v1/namespaces/payments/pods/x/log/extra", 400),
    # what the grant does not cover, however spelled
    ("GET", "/api/v1/namespaces/payments/secrets", 403),
    ("HEAD", "/api/v1/namespaces/payments/secrets/db", 403),
    ("GET", "/api/v1/namespaces/payments/pods/x/log?follow=1", 403),
    ("GET", "/api/v1/namespaces/payments/pods/x/log?follow=T", 403),
    ("GET", "/api/v1/namespaces/payments/pods/x/exec?command=sh", 403),
    ("POST", "/api/v1/namespaces/payments/pods/x/exec?command=sh", 403),
    ("GET", "/api/v1/namespaces/payments/pods/x/proxy/metrics", 403),
    ("GET", "/api/v1/proxy/namespaces/payments/pods/x/metrics", 403),
    ("GET", "/api/v1/namespaces/payments/services/x:80/proxy/", 400),  # trailing slash: refused before RBAC
    ("GET", "/api/v1/namespaces/payments/services/x:80/proxy/metrics", 403),
    ("GET", "/api/v1/watch/namespaces/payments/secrets", 403),
    ("GET", "/api/v1/namespaces/payments/secrets?watch=1", 403),
    ("GET", "/api/v1/namespaces/payments/secrets?watch=&timeoutSeconds=99999", 403),
    ("GET", "/api/v1/namespaces/orders/pods?watch=true", 403),
    ("GET", "/api/v1/pods", 403),  # cluster-wide from a namespaced grant
    ("GET", "/api/v1/nodes", 403),
    ("GET", "/api/v1/namespaces/payments", 403),  # the namespace object is not in rollout-restart
    ("DELETE", "/apis/apps/v1/namespaces/payments/deployments/payments-api", 403),
    ("DELETE", "/apis/apps/v1/namespaces/payments/deployments", 403),  # deletecollection
    ("POST", "/apis/apps/v1/namespaces/payments/deployments?dryRun=All", 403),
    ("PATCH", "/apis/apps/v1/namespaces/payments/deployments/payments-api/scale", 403),
    ("PATCH", "/apis/apps/v1/namespaces/payments/deployments/payments-api/status", 403),
    ("GET", "/metrics", 403),  # a non-resource URL from a namespaced grant
    ("GET", "/logs", 403),
    ("GET", "/debug/pprof/heap", 403),
    # repeated interpreted parameters (Go reads the first, others the last)
    ("GET", "/apis/apps/v1/namespaces/payments/deployments?watch=false&w%61tch=true", 400),
    ("GET", "/apis/apps/v1/namespaces/payments/deployments?fieldSelector=a%3Db&fieldSelector=c%3Dd", 400),
    ("GET", "/apis/apps/v1/namespaces/payments/deployments?labelSelector=a&label%53elector=b", 400),
    ("GET", "/apis/apps/v1/namespaces/payments/deployments?watch=1;watch=0", 400),
    ("GET", "/apis/apps/v1/namespaces/payments/deployments?fieldSelector=%zz", 400),
    # methods that are no Kubernetes verb on a resource
    ("OPTIONS", "/api/v1/namespaces/payments/pods", 400),
    ("TRACE", "/api/v1/namespaces/payments/pods", 400),
    ("CONNECT", "/api/v1/namespaces/payments/pods/x/portforward", 400),
    ("PROPFIND", "/api/v1/namespaces/payments/pods", 400),
    ("OPTIONS", "/api", 403),  # non-resource: not discovery unless GET
    ("HEAD", "/version", 403),  # RequestInfo's non-resource verb is "head": not discovery
]


@pytest.mark.parametrize(("method", "path", "code"), REFUSED_PATHS, ids=[f"{m} {p}" for m, p, _ in REFUSED_PATHS])
def test_refused_and_never_forwarded(through: Through, method: str, path: str, code: int) -> None:
    grant = through.grant(RESTART)
    answer = through.http(method, path, content=b"{}" if method in ("POST", "PATCH") else None)
    assert answer.status_code == code, answer.text
    if method != "HEAD":
        assert answer.json()["kind"] == "Status", answer.text
    assert not through.api.cluster.seen, [(s.method, s.path) for s in through.api.cluster.seen]
    assert [r.status for r in refusals(through, grant)] == [code]


REFUSED_HEADERS: list[tuple[str, list[tuple[str, str]]]] = [
    ("impersonate upper case", [("IMPERSONATE-USER", "system:admin")]),
    ("impersonate group", [("impersonate-group", "system:masters")]),
    ("impersonate uid", [("Impersonate-Uid", "0")]),
    ("impersonate extra", [("Impersonate-Extra-eks-jit.io%2Fsession", "incident-1")]),
    ("impersonate extra, upper case", [("IMPERSONATE-EXTRA-X", "y")]),
    ("two content types, mixed case", [("Content-Type", SMP), ("content-type", "application/apply-patch+yaml")]),
]


@pytest.mark.parametrize(("name", "headers"), REFUSED_HEADERS, ids=[n for n, _ in REFUSED_HEADERS])
def test_header_tricks_are_refused(through: Through, name: str, headers: list[tuple[str, str]]) -> None:
    grant = through.grant(RESTART)
    sent = [("authorization", f"Bearer {through.token()}"), *headers]
    with httpx2.Client(verify=ssl.create_default_context(cadata=through.gateway.server.ca_pem)) as client:
        answer = client.patch(through.server + DEPLOYMENT, content=RESTARTED, headers=sent)
    assert answer.status_code in (400, 403) and answer.json()["kind"] == "Status", answer.text
    assert not through.api.cluster.seen
    assert len(refusals(through, grant)) == 1


PATCHES_REFUSED: list[tuple[str, str, bytes]] = [
    ("image", SMP, EVIL),
    ("image, charset parameter", SMP + "; charset=utf-8", EVIL),
    ("image, upper-case media type", SMP.upper(), EVIL),
    ("BOM before the JSON", SMP, b"\xef\xbb\xbf" + RESTARTED),
    ("UTF-16 body", SMP, RESTARTED.decode().encode("utf-16")),
    ("a key twice, the allowed one last", SMP, b'{"spec":{"replicas":99},"spec":' + RESTARTED[9:]),
    ("the annotation key twice", SMP, RESTARTED[:-5] + b',"kubectl.kubernetes.io/restartedAt":"y"}}}}'),
    ("NaN", "application/merge-patch+json", b'{"spec":{"replicas":NaN}}'),
    ("$patch replace on annotations", SMP, RESTARTED[:-5].replace(b'{"kube', b'{"$patch":"replace","kube') + b"}}}}"),
    (
        "$patch escaped as \\u0024",
        SMP,
        b'{"spec":{"template":{"metadata":{"annotations":{"\\u0024patch":"replace"}}}}}',
    ),
    ("$retainKeys", SMP, b'{"spec":{"template":{"metadata":{"$retainKeys":["annotations"]}}}}'),
    ("$setElementOrder", SMP, b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"x"}]}}}}'),
    ("$deleteFromPrimitiveList", SMP, b'{"spec":{"template":{"spec":{"$deleteFromPrimitiveList/args":["a"]}}}}'),
    ("merge a scalar into an object", "application/merge-patch+json", b'{"spec":{"template":{"metadata":1}}}'),
    ("the whole object replaced", "application/merge-patch+json", b"null"),
    (
        "JSON patch, copy into the annotation",
        "application/json-patch+json",
        b'[{"op":"copy","from":"/spec/template/spec","path":'
        b'"/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt"}]',
    ),
    (
        "JSON patch, move out of the spec",
        "application/json-patch+json",
        b'[{"op":"move","from":"/spec/replicas","path":'
        b'"/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt"}]',
    ),
    ("JSON patch, root path", "application/json-patch+json", b'[{"op":"replace","path":"","value":{}}]'),
    ("JSON patch, op in upper case", "application/json-patch+json", b'[{"op":"Replace","path":"/spec/replicas"}]'),
    ("JSON patch, op twice", "application/json-patch+json", b'[{"op":"test","op":"remove","path":"/spec"}]'),
    ("server-side apply", "application/apply-patch+yaml", b"spec:\n  replicas: 99\n"),
    ("server-side apply as JSON", "application/apply-patch+yaml", RESTARTED),
    ("no content type", "", RESTARTED),
    ("plain JSON", "application/json", RESTARTED),
    ("gzip body judged as plain", SMP, gzip.compress(EVIL)),
    ("huge number elsewhere", SMP, b'{"spec":{"replicas":1' + b"0" * 400 + b"}}"),
    # a secret mounted into the pod template, alongside the one change the scope allows: the pods the
    # rollout starts would carry the secret's values where the agent's image can read them
    (
        "a secret volume mounted with the restart",
        SMP,
        json.dumps(
            {
                "spec": {
                    "template": {
                        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                        "spec": {
                            "volumes": [{"name": "db", "secret": {"secretName": "payments-db"}}],
                            "containers": [{"name": "app", "volumeMounts": [{"name": "db", "mountPath": "/db"}]}],
                        },
                    }
                }
            }
        ).encode(),
    ),
    (
        "a secret as environment, JSON patch",
        "application/json-patch+json",
        b'[{"op":"add","path":"/spec/template/spec/containers/0/envFrom",'
        b'"value":[{"secretRef":{"name":"payments-db"}}]}]',
    ),
]


@pytest.mark.parametrize(("name", "content_type", "body"), PATCHES_REFUSED, ids=[n for n, _, _ in PATCHES_REFUSED])
def test_patches_under_only_changes_that_are_refused(
    through: Through, name: str, content_type: str, body: bytes
) -> None:
    grant = through.grant(RESTART)
    headers = {"content-type": content_type} if content_type else {}
    if name.startswith("gzip"):
        headers["content-encoding"] = "gzip"
    answer = through.http("PATCH", DEPLOYMENT, content=body, headers=headers)
    assert answer.status_code == 403, answer.text
    assert not through.api.cluster.seen
    assert [r.status for r in refusals(through, grant)] == [403]


def test_the_allowed_patch_passes_with_a_charset_and_as_a_json_patch(through: Through) -> None:
    """The control: the same narrow patch, in the spellings the API server also accepts, is forwarded."""
    through.grant(RESTART)
    assert through.http("PATCH", DEPLOYMENT, content=RESTARTED, headers={"content-type": SMP}).status_code == 200
    charset = through.http("PATCH", DEPLOYMENT, content=RESTARTED, headers={"content-type": SMP + "; charset=utf-8"})
    assert charset.status_code in (200, 415)  # the emulated API may not take the parameter: it was forwarded
    assert [s.content_type for s in seen_writes(through)] == [SMP, SMP + "; charset=utf-8"]


# -- tokens ---------------------------------------------------------------------------------------------


def test_a_token_for_another_partitions_sts_is_refused(through: Through) -> None:
    from botocore.credentials import Credentials

    from eks_jit.token import token_for

    through.grant(RESTART)
    creds = Credentials(KEY.access_key_id, KEY.secret_access_key)
    for region in ("cn-north-1", "us-gov-west-1", "eu-west-1"):
        token, _ = token_for(CLUSTER, through.world.clock.now(), region=region, credentials=creds)
        answer = through.http("GET", "/api/v1/namespaces/payments/pods", token=token)
        expected = 200 if region == "eu-west-1" else 401  # another region of the partition is STS all the same
        assert answer.status_code == expected, (region, answer.text)
    assert [s.path for s in through.api.cluster.seen] == ["/api/v1/namespaces/payments/pods"]


def test_a_token_in_the_wrong_header_shape_is_401(through: Through) -> None:
    through.grant(RESTART)
    token = through.token()
    for authorization in (f"Basic {token}", token, f"Bearer{token}", "Bearer x"):
        answer = through.http("GET", "/api/v1/namespaces/payments/pods", headers={"authorization": authorization})
        assert answer.status_code == 401, (authorization[:20], answer.text)
    assert not through.api.cluster.seen


# -- bytes no client library sends ------------------------------------------------------------------------


def _request_line(through: Through, line: str, *headers: str) -> bytes:
    host = through.gateway.url.removeprefix("https://")
    head = [line, f"Host: {host}", f"Authorization: Bearer {through.token()}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "line",
    [
        "GET https://{host}/clusters/{cluster}/api/v1/namespaces/payments/secrets HTTP/1.1",  # absolute form
        "get /clusters/{cluster}/api/v1/namespaces/payments/secrets HTTP/1.1",  # lower-case method
        "GET /clusters/{cluster}/api/v1/namespaces/payments/secrets#x HTTP/1.1",
        "GET /clusters/{cluster}/api/v1/namespaces/payments/pods/../secrets HTTP/1.1",
        "GET /clusters/{cluster}/api/v1/namespaces/payments/pods/..%2fsecrets HTTP/1.1",
        "GET /clusters/{cluster}//api/v1/namespaces/payments/secrets HTTP/1.1",
        "GET /clusters/{cluster}/api/v1/namespaces/payments/pods/x\\..\\secrets HTTP/1.1",
    ],
)
def test_raw_request_lines_reach_nothing(through: Through, line: str) -> None:
    through.grant(RESTART)
    host = through.gateway.url.removeprefix("https://")
    answer = raw(through, _request_line(through, line.format(host=host, cluster=CLUSTER)))
    code = int(answer.split(b" ", 2)[1])
    assert 400 <= code < 500, answer[:300]
    assert not through.api.cluster.seen


def test_a_lower_case_patch_is_judged_as_the_patch_it_is(through: Through) -> None:
    """``patch`` is no method to Go (the API server would refuse it); the gateway reads it as PATCH
    and httpx sends PATCH: the body is judged all the same, and an evil one goes nowhere."""
    through.grant(RESTART)
    request = _request_line(
        through,
        f"patch /clusters/{CLUSTER}{DEPLOYMENT} HTTP/1.1",
        f"Content-Type: {SMP}",
        f"Content-Length: {len(EVIL)}",
    )
    answer = raw(through, request + EVIL)
    assert int(answer.split(b" ", 2)[1]) == 403, answer[:300]
    assert not through.api.cluster.seen


def test_a_chunked_body_with_expect_is_judged_whole(through: Through) -> None:
    through.grant(RESTART)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(EVIL[i : i + 7]), EVIL[i : i + 7]) for i in range(0, len(EVIL), 7))
    request = _request_line(
        through,
        f"PATCH /clusters/{CLUSTER}{DEPLOYMENT} HTTP/1.1",
        f"Content-Type: {SMP}",
        "Transfer-Encoding: chunked",
        "Expect: 100-continue",
    )
    answer = raw(through, request + chunks + b"0\r\n\r\n")
    assert b" 403 " in answer.split(b"\r\n", 3)[0] or b" 403 " in answer, answer[:400]
    assert not through.api.cluster.seen


def test_hop_by_hop_and_upgrade_headers_are_not_forwarded(through: Through) -> None:
    through.grant(RESTART)
    answer = through.http(
        "GET",
        "/apis/apps/v1/namespaces/payments/deployments",
        headers={
            "connection": "Upgrade, X-Forwarded-For",
            "upgrade": "SPDY/3.1",
            "x-forwarded-for": "10.0.0.1",
            "x-remote-user": "system:admin",
            "x-remote-group": "system:masters",
            "proxy-authorization": "Bearer x",
            "te": "trailers",
        },
    )
    assert answer.status_code == 200, answer.text
    forwarded = through.api.cluster.seen[-1]
    assert forwarded.user is not None and forwarded.user == "eks-jit:grant"
    assert list(forwarded.groups) == ["eks-jit:rollout-restart:payments"]


# -- streams: what may run as long as the upstream likes is cut at the grant's end, not buffered past it --


@pytest.mark.parametrize(
    ("method", "path", "query", "streams"),
    [
        ("GET", "/api/v1/namespaces/payments/pods/x/proxy/events", "", True),
        ("POST", "/api/v1/namespaces/payments/services/x:80/proxy/long-poll", "", True),
        ("GET", "/api/v1/nodes/n/proxy/logs/messages", "", True),
        ("GET", "/api/v1/proxy/namespaces/payments/pods/x/events", "", True),
        ("GET", "/api/v1/namespaces/payments/pods/x/log", "follow=T", True),
        ("GET", "/api/v1/watch/namespaces/payments/pods", "", True),
        ("GET", "/apis/apps/v1/watch/namespaces/payments/deployments/payments-api", "", True),
        ("GET", "/apis/apps/v1/namespaces/payments/deployments", "watch=", True),
        ("GET", "/apis/apps/v1/namespaces/payments/deployments", "watch=0&timeoutSeconds=9999", False),
        ("GET", "/apis/apps/v1/namespaces/payments/deployments/payments-api", "watch=true", False),
    ],
)
def test_what_may_stream_is_passed_as_a_guarded_stream(method: str, path: str, query: str, streams: bool) -> None:
    """A proxied answer was buffered (no read timeout) and handed over whole after the grant had ended
    or been revoked; it is now a guarded stream like a watch (pure: the emulated API has no proxy)."""
    from eks_jit.server.domain.kube_request import KubeRequest, parse_request

    request = parse_request(method, path, query)
    assert isinstance(request, KubeRequest) and request.streams is streams


@pytest.mark.parametrize(
    ("selector", "name"),
    [
        ("metadata.name=zzz,metadata.name=payments-api", "payments-api"),
        ("metadata.name=payments-api,metadata.name=aaa", "aaa"),
        ("metadata.name==b,metadata.name=a", "b"),  # '=' sorts before 'a'
        ("status.phase=Running,metadata.name=x", "x"),
        ("metadata.name=x,bad", ""),
    ],
)
def test_a_selector_names_what_the_api_server_names(selector: str, name: str) -> None:
    """apimachinery's fields.parseSelector sorts the terms: the name RequestInfo gives a list with two
    ``metadata.name`` terms is the first *sorted*, not the first written (pure: no scope here has resourceNames)."""
    from urllib.parse import quote

    from eks_jit.server.domain.kube_request import KubeRequest, parse_request

    request = parse_request("GET", "/apis/apps/v1/namespaces/payments/deployments", "fieldSelector=" + quote(selector))
    assert isinstance(request, KubeRequest) and request.name == name


# -- time: a write is judged when its body is whole, not when its headers arrived ------------------------


def _slow_patch(through: Through, between: Any) -> bytes:
    """A PATCH whose body arrives in two parts, ``between()`` running while the gateway waits for the rest."""
    context = ssl.create_default_context(cadata=through.gateway.server.ca_pem)
    host, port = through.gateway.url.removeprefix("https://").rsplit(":", 1)
    head = _request_line(
        through,
        f"PATCH /clusters/{CLUSTER}{DEPLOYMENT} HTTP/1.1",
        f"Content-Type: {SMP}",
        f"Content-Length: {len(RESTARTED)}",
    )
    with (
        socket.create_connection((host, int(port)), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname=host) as tls,
    ):
        tls.sendall(head + RESTARTED[:10])
        time.sleep(0.5)  # the gateway has verified the token and read the grants: it waits for the body
        between()
        tls.sendall(RESTARTED[10:])
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer


def test_a_body_sent_past_the_grants_end_is_refused(through: Through) -> None:
    """The decision was taken at the moment the headers arrived: a body trickled in until after
    ``expires_at`` (uvicorn has no body timeout) carried the write past the grant's end."""
    grant = through.grant(RESTART)
    answer = _slow_patch(through, lambda: through.world.clock.set(datetime_of(grant["expires_at"])))
    assert int(answer.split(b" ", 2)[1]) == 403 and b"expired at" in answer, answer[:400]
    assert not seen_writes(through)


def test_a_body_sent_past_a_revoke_is_refused(through: Through) -> None:
    grant = through.grant(RESTART)

    def revoke() -> None:
        status, _ = through.world.call(
            "POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "done"}, caller=ADMIN
        )
        assert status == 200
        through.world.clock.advance(timedelta(seconds=2))

    answer = _slow_patch(through, revoke)
    assert int(answer.split(b" ", 2)[1]) == 403, answer[:400]
    assert not seen_writes(through)


def test_a_body_sent_at_once_still_passes(through: Through) -> None:
    """The control: the same two-part PATCH with nothing in between is forwarded."""
    through.grant(RESTART)
    answer = _slow_patch(through, lambda: None)
    assert int(answer.split(b" ", 2)[1]) == 200, answer[:400]
    assert [s.method for s in seen_writes(through)] == ["PATCH"]


def test_a_put_without_the_stored_resource_version_is_refused(through_update: Through) -> None:
    """A PUT is judged against the object read a moment before; without that object's resourceVersion
    the API server applies it unconditionally, so a change made in between (by anyone) would be undone:
    a change outside what the rule allows. With it, the API server refuses a PUT on a changed object."""
    t = through_update
    t.grant(RESTART)
    assert t.http("PATCH", DEPLOYMENT, content=RESTARTED, headers={"content-type": SMP}).status_code == 200
    t.api.cluster.clear_seen()
    stored = deployment(t)
    assert stored["metadata"]["resourceVersion"]
    stored["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "later"
    for version in (None, "1"):
        body = json.loads(json.dumps(stored))
        if version is None:
            del body["metadata"]["resourceVersion"]
        else:
            body["metadata"]["resourceVersion"] = version
        answer = t.http(
            "PUT", DEPLOYMENT, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 403 and "resourceVersion" in answer.json()["message"], answer.text
    assert not seen_writes(t)
