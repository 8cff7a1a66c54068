"""The gateway's request parser reads a request as the Kubernetes API server's RequestInfo does.

The tables are k8s.io/apiserver's own cases (pkg/endpoints/request/requestinfo_test.go:
TestGetAPIRequestInfo, TestGetNonAPIRequestInfo, TestSelectorParsing), then the cases an
attacker would try: a path the API server reads as another namespace or resource than a naive
parser does must be refused, never guessed at.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eks_jit.server.domain.kube_request import (
    AmbiguousRequest,
    KubeRequest,
    NonResourceRequest,
    NotAKubernetesRequest,
    name_from_field_selector,
    parse_request,
)

# method, url, verb, group, version, namespace, resource, subresource, name   (requestinfo_test.go)
REQUEST_INFO_CASES = [
    ("GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""),
    ("GET", "/api/v1/namespaces/other", "get", "", "v1", "other", "namespaces", "", "other"),
    ("GET", "/api/v1/namespaces/other/pods", "list", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"),
    ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"),
    ("GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""),
    ("HEAD", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""),
    # special verbs
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "", "v1", "other", "pods", "", "foo"),
    ("GET", "/api/v1/watch/pods", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=true", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=false", "list", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "v1", "other", "pods", "", ""),
    ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "", "v1", "other", "pods", "", ""),
    # subresource identification
    ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "", "v1", "other", "pods", "status", "foo"),
    ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "", "v1", "other", "pods", "proxy", "foo"),
    ("PUT", "/api/v1/namespaces/other/finalize", "update", "", "v1", "other", "namespaces", "finalize", "other"),
    ("PUT", "/api/v1/namespaces/other/status", "update", "", "v1", "other", "namespaces", "status", "other"),
    # verb identification
    ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "v1", "other", "pods", "", "foo"),
    ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "v1", "other", "pods", "", "foo"),
    ("POST", "/api/v1/namespaces/other/pods", "create", "", "v1", "other", "pods", "", ""),
    # deletecollection verb identification
    ("DELETE", "/api/v1/nodes", "deletecollection", "", "v1", "", "nodes", "", ""),
    ("DELETE", "/api/v1/namespaces", "deletecollection", "", "v1", "", "namespaces", "", ""),
    ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "", "v1", "other", "pods", "", ""),
    (
        "DELETE",
        "/apis/extensions/v1/namespaces/other/pods",
        "deletecollection",
        "extensions",
        "v1",
        "other",
        "pods",
        "",
        "",
    ),
    # api group and version identification
    ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "extensions", "v1", "other", "pods", "", ""),
    (
        "POST",
        "/apis/extensions/v1beta3/namespaces/other/pods",
        "create",
        "extensions",
        "v1beta3",
        "other",
        "pods",
        "",
        "",
    ),
    # what kubectl sends for the on-call story and its attacks
    (
        "PATCH",
        "/apis/apps/v1/namespaces/payments/deployments/payments-api",
        "patch",
        "apps",
        "v1",
        "payments",
        "deployments",
        "",
        "payments-api",
    ),
    (
        "GET",
        "/apis/apps/v1/namespaces/payments/deployments/payments-api/scale",
        "get",
        "apps",
        "v1",
        "payments",
        "deployments",
        "scale",
        "payments-api",
    ),
    (
        "PUT",
        "/apis/apps/v1/namespaces/payments/deployments/payments-api/status",
        "update",
        "apps",
        "v1",
        "payments",
        "deployments",
        "status",
        "payments-api",
    ),
    (
        "GET",
        "/api/v1/namespaces/payments/pods/payments-api-1/log?follow=true",
        "get",
        "",
        "v1",
        "payments",
        "pods",
        "log",
        "payments-api-1",
    ),
    # a websocket exec is a GET (Kubernetes #128743): RequestInfo calls it get; kube_rules asks for create too
    (
        "GET",
        "/api/v1/namespaces/payments/pods/p/exec?command=sh&stdin=true",
        "get",
        "",
        "v1",
        "payments",
        "pods",
        "exec",
        "p",
    ),
    ("POST", "/api/v1/namespaces/payments/pods/p/exec?command=sh", "create", "", "v1", "payments", "pods", "exec", "p"),
    ("GET", "/api/v1/namespaces/payments", "get", "", "v1", "payments", "namespaces", "", "payments"),
    (
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:foo",
        "get",
        "rbac.authorization.k8s.io",
        "v1",
        "",
        "clusterroles",
        "",
        "system:controller:foo",
    ),
    ("GET", "/api/v1/watch/namespaces/other/pods/foo", "watch", "", "v1", "other", "pods", "", "foo"),
    ("GET", "/api/v1/pods?watch=", "watch", "", "v1", "", "pods", "", ""),  # the empty string is true
    ("GET", "/api/v1/pods?watch=FALSE", "list", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?watch=yes", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods?Watch=true", "list", "", "v1", "", "pods", "", ""),  # keys are case-sensitive
    ("GET", "/api/v1/namespaces/other/pods/foo?watch=true", "get", "", "v1", "other", "pods", "", "foo"),
]


@pytest.mark.parametrize(
    ("method", "url", "verb", "group", "version", "ns", "resource", "sub", "name"), REQUEST_INFO_CASES
)
def test_resource_requests_read_as_request_info_reads_them(
    method: str, url: str, verb: str, group: str, version: str, ns: str, resource: str, sub: str, name: str
) -> None:
    path, _, query = url.partition("?")
    request = parse_request(method, path, query)
    assert isinstance(request, KubeRequest)
    got = (request.verb, request.api_group, request.api_version, request.namespace, request.resource)
    assert (*got, request.subresource, request.name) == (verb, group, version, ns, resource, sub, name)


def test_the_legacy_proxy_verb_keeps_the_proxied_path_and_has_no_subresource() -> None:
    request = parse_request("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource")
    assert isinstance(request, KubeRequest)
    assert (request.verb, request.subresource, request.proxy_path) == (
        "proxy",
        "",
        ("subpath", "not", "a", "subresource"),
    )


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/version",
        "/apis/group/version",
        "/badprefix/version/resource",
        "/apis/version/resource",  # "missing api group": /apis needs four segments
        "/api",
        "/apis/extensions/v1beta1",
        "/not-api/version/resource",
        "/version",
        "/openapi/v3/apis/apps/v1",
    ],
)
def test_non_resource_paths_are_non_resource_requests(path: str) -> None:
    assert isinstance(parse_request("GET", path), NonResourceRequest)


@pytest.mark.parametrize(
    ("path", "discovery"),
    [
        ("/api", True),
        ("/apis", True),
        ("/api/v1", True),
        ("/apis/apps", True),
        ("/apis/apps/v1", True),
        ("/version", True),
        ("/openapi/v2", True),
        ("/openapi/v3", True),
        ("/openapi/v3/apis/apps/v1", True),
        ("/healthz", True),
        ("/metrics", False),
        ("/logs", False),
        ("/debug/pprof", False),
        ("/.well-known/openid-configuration", False),
        ("/", False),
    ],
)
def test_discovery_is_the_read_only_paths_kubectl_needs(path: str, discovery: bool) -> None:
    request = parse_request("GET", path)
    assert isinstance(request, NonResourceRequest) and request.is_discovery is discovery


def test_a_write_to_a_discovery_path_is_not_discovery() -> None:
    request = parse_request("POST", "/apis")
    assert isinstance(request, NonResourceRequest) and request.verb == "post" and not request.is_discovery


# name, method, url, name, verb, fieldSelector, labelSelector   (TestSelectorParsing)
SELECTOR_CASES = [
    ("no selector", "GET", "/apis/group/version/resource", "", "list", "", ""),
    (
        "metadata.name",
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1",
        "name1",
        "list",
        "metadata.name=name1",
        "",
    ),
    (
        "with watch",
        "GET",
        "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1",
        "name1",
        "watch",
        "metadata.name=name1",
        "",
    ),
    (
        "random",
        "GET",
        "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
        "",
        "list",
        "foo=bar",
        "baz=qux",
    ),
    (
        "invalid",
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo",
        "",
        "list",
        "metadata.name=name1,foo",
        "",
    ),
    (
        "invalid watch",
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true",
        "",
        "watch",
        "metadata.name=name1,foo",
        "",
    ),
    (
        "deletecollection",
        "DELETE",
        "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
        "",
        "deletecollection",
        "foo=bar",
        "baz=qux",
    ),
    (
        "other verb",
        "GET",
        "/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar",
        "name",
        "get",
        "",
        "",
    ),
    (
        "legacy watch",
        "GET",
        "/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar",
        "",
        "watch",
        "",
        "",
    ),
    (
        "legacy item watch",
        "GET",
        "/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo",
        "name",
        "watch",
        "",
        "",
    ),
    # kubectl get deployment payments-api -w
    (
        "kubectl -w",
        "GET",
        "/apis/apps/v1/namespaces/payments/deployments?fieldSelector=metadata.name%3Dpayments-api&watch=true",
        "payments-api",
        "watch",
        "metadata.name=payments-api",
        "",
    ),
    ("==", "GET", "/api/v1/pods?fieldSelector=metadata.name%3D%3Dp1", "p1", "list", "metadata.name==p1", ""),
    ("!= names nothing", "GET", "/api/v1/pods?fieldSelector=metadata.name!%3Dp1", "", "list", "metadata.name!=p1", ""),
    (
        "and",
        "GET",
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,metadata.name%3Dp1",
        "p1",
        "list",
        "spec.nodeName=n1,metadata.name=p1",
        "",
    ),
]


@pytest.mark.parametrize(("case", "method", "url", "name", "verb", "fields", "labels"), SELECTOR_CASES)
def test_selectors_as_request_info_reads_them(
    case: str, method: str, url: str, name: str, verb: str, fields: str, labels: str
) -> None:
    path, _, query = url.partition("?")
    request = parse_request(method, path, query)
    assert isinstance(request, KubeRequest)
    assert (request.name, request.verb, request.field_selector, request.label_selector) == (name, verb, fields, labels)


@pytest.mark.parametrize(
    ("selector", "name"),
    [
        ("metadata.name=a\\,b", "a,b"),  # an escaped comma is part of the value
        ("metadata.name=a\\q", ""),  # an unknown escape: the selector does not parse
        ("metadata.name=a=b", ""),  # an unescaped '=' in a value does not parse
        ("metadata.name=a/b", ""),  # not a path segment name
        ("metadata.name=..", ""),
        (",metadata.name=a,", "a"),  # empty terms are skipped
        ("metadata.name=", ""),
    ],
)
def test_field_selector_names_as_apimachinery_parses_them(selector: str, name: str) -> None:
    assert name_from_field_selector(selector) == name


# -- what an attacker sends ------------------------------------------------------------------------

AMBIGUOUS = [
    "/api/v1/namespaces/payments/../orders/pods",  # '..' must never be resolved by one side only
    "/api/v1/namespaces/payments/%2e%2e/orders/pods",
    "/api/v1/namespaces/payments/./pods",
    "/api/v1/namespaces/payments%2Fpods",  # Go decodes %2F before splitting: two segments upstream
    "/api/v1/namespaces/payments/secrets%2Fdb",
    "/api/v1/namespaces/payments/pods/a%2f..%2f..%2forders",
    "/api/v1/namespaces/payments//pods",  # a double slash
    "//api/v1/namespaces/payments/pods",
    "/api/v1/namespaces/payments/pods/",  # a trailing slash
    "/api/v1/namespaces/payments/pods/a%5cb",  # a backslash, encoded
    "/api/v1/namespaces/payments/pods/a\\b",
    "/api/v1/namespaces/payments/pods/a;b",  # path parameters
    "/api/v1/namespaces/payments/pods/a%3bb",
    "/api/v1/namespaces/payments/pods/a%00",  # NUL
    "/api/v1/namespaces/payments/pods/a%zz",  # a malformed escape
    "/api/v1/namespaces/payments/pods/a%2",
    "/api/v1/namespaces/payments/pods/a%25b",  # a literal '%' in a segment
    "/api/v1/namespaces/payments/pods/%ff",  # not UTF-8
    "/api/v1/namespaces/payments/pods/a b",
    "/api/v1/namespaces/payments/namespaces/orders",  # a namespace inside a namespace
    "/api/v1/namespaces/payments/pods/p/log/extra",  # past resource/name/subresource
    "/apis/apps/v1/namespaces/payments/deployments/d/scale/x",
]


@pytest.mark.parametrize("path", AMBIGUOUS)
def test_paths_the_api_server_could_read_differently_are_refused(path: str) -> None:
    with pytest.raises(AmbiguousRequest) as refused:
        parse_request("GET", path)
    assert refused.value.code == "ambiguous_request"


@pytest.mark.parametrize(
    "query",
    [
        "watch=false&watch=true",  # Go takes the first; another reader the last
        "fieldSelector=metadata.name%3Da&fieldSelector=metadata.name%3Db",
        "labelSelector=a&labelSelector=b",
        "watch=false;watch=true",  # Go drops a pair holding ';', Python splits it
        "watch=%zz",
    ],
)
def test_queries_read_two_ways_are_refused(query: str) -> None:
    with pytest.raises(AmbiguousRequest):
        parse_request("GET", "/api/v1/namespaces/payments/pods", query)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("OPTIONS", "/api/v1/namespaces/payments/pods"),
        ("CONNECT", "/api/v1/namespaces/payments/pods/p/exec"),
        ("GET", "/api/v1/watch"),  # a special verb with nothing after it (RequestInfo errors)
        ("GET", "api/v1/pods"),
    ],
)
def test_requests_that_are_not_kubernetes_api_requests(method: str, path: str) -> None:
    with pytest.raises(NotAKubernetesRequest) as refused:
        parse_request(method, path)
    assert refused.value.code == "not_a_kubernetes_request"


def test_a_percent_escaped_ordinary_character_reads_as_the_character() -> None:
    request = parse_request("GET", "/api/v1/namespaces/pay%6dents/pods")
    assert isinstance(request, KubeRequest) and request.namespace == "payments"
    assert request.path == "/api/v1/namespaces/payments/pods"


def test_describe_names_verb_resource_and_namespace() -> None:
    request = parse_request("PATCH", "/apis/apps/v1/namespaces/payments/deployments/payments-api")
    assert isinstance(request, KubeRequest)
    assert request.describe() == "patch apps/deployments payments-api in namespace payments"
    nodes = parse_request("GET", "/api/v1/nodes")
    assert isinstance(nodes, KubeRequest) and nodes.describe() == "list nodes (cluster-wide)"


# -- a parsed request renders to a path that parses to the same request -----------------------------

_name = st.from_regex(r"[a-z0-9]([-a-z0-9.:@]{0,20}[a-z0-9])?", fullmatch=True).filter(lambda s: s not in (".", ".."))
_dns = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_odd = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/\\%;\x7f", min_codepoint=0x20), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str]:
    group = draw(st.sampled_from(["", "apps", "batch", "rbac.authorization.k8s.io"]))
    base = f"/apis/{group}/v1" if group else "/api/v1"
    namespace = draw(st.one_of(st.just(""), _dns))
    resource = draw(st.sampled_from(["pods", "deployments", "configmaps", "nodes", "roles"]))
    name = draw(st.one_of(st.just(""), _name, _odd))
    sub = draw(st.sampled_from(["", "status", "log", "exec", "scale"])) if name else ""
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]))
    segments = [base]
    if draw(st.booleans()) and method == "GET":
        segments.append("watch")
    if namespace:
        segments.append(f"namespaces/{namespace}")
    from urllib.parse import quote

    segments.append(resource)
    if name:
        segments.append(quote(name, safe=""))
    if sub:
        segments.append(sub)
    query = draw(
        st.sampled_from(["", "watch=true", "watch=0", "fieldSelector=metadata.name%3Dx", "labelSelector=a%3Db"])
    )
    return method, "/".join(segments), query


@given(requests())
def test_a_parsed_request_renders_to_a_path_that_parses_the_same(request: tuple[str, str, str]) -> None:
    method, path, query = request
    parsed = parse_request(method, path, query)
    assert isinstance(parsed, KubeRequest)
    assert parse_request(method, parsed.path, parsed.query_string) == parsed


def test_the_namespace_object_renders_as_its_own_path() -> None:
    parsed = parse_request("GET", "/api/v1/namespaces/payments")
    assert isinstance(parsed, KubeRequest) and parsed.path == "/api/v1/namespaces/payments"
    listed = parse_request(
        "GET", "/apis/apps/v1/namespaces/payments/deployments", "fieldSelector=metadata.name%3Dd&watch=1"
    )
    assert isinstance(listed, KubeRequest) and (listed.verb, listed.name) == ("watch", "d")
    assert listed.path == "/apis/apps/v1/namespaces/payments/deployments"
    assert listed.query_string == "watch=true&fieldSelector=metadata.name%3Dd"
