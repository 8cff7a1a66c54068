"""What a Kubernetes API request asks for: the pure parser the data-path gateway authorizes on.

One HTTP request (method, path, query string) becomes either a :class:`KubeRequest` (a verb on
a resource: ``patch`` ``deployments`` ``payments-api`` in namespace ``payments``) or a
:class:`NonResourceRequest` (``/api``, ``/version``, ``/openapi/v3``...). The fields and the verbs
are the ones the Kubernetes API server's own ``RequestInfoFactory`` assigns
(k8s.io/apiserver ``pkg/endpoints/request/requestinfo.go``), so a rule means here what it means
to RBAC: GET on a collection is ``list`` (``watch`` with ``?watch=true``, or under the legacy
``/watch/`` prefix), DELETE on a collection is ``deletecollection``, HEAD is ``get``,
``/api/v1/namespaces/payments`` is the resource ``namespaces`` named ``payments`` *in* namespace
``payments``, and ``?fieldSelector=metadata.name=x`` on a list or watch names ``x``.

Where the API server and this parser could read one request two ways, the request is refused
(:class:`AmbiguousRequest`) rather than guessed at: an encoded ``/`` (``%2F``: Go decodes it before
splitting, so ``payments%2Fpods`` is two segments upstream), a ``.`` or ``..`` segment (encoded
or not), an empty segment (``//``), a backslash, ``;``, a control character or a malformed
escape; a repeated ``watch``/``fieldSelector``/``labelSelector`` parameter; a path longer than
``resource/name/subresource`` except below a ``proxy`` subresource. A request that is not an API
request at all (an unknown method, ``/api/v1/watch``) is :class:`NotAKubernetesRequest`.

The gateway should forward :attr:`KubeRequest.path`, the canonical rendering of what was
authorized, rather than the bytes received: then what was checked is what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from .errors import DomainError

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_SPECIAL_VERBS = ("proxy", "watch")  # RequestInfoFactory's verbs that can come first in the path
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_SELECTOR_VERBS = ("list", "watch", "deletecollection")
# Query parameters whose value changes what is authorized: given twice, which one counts depends on
# the reader (Go's url.Values.Get takes the first).
_INTERPRETED = ("watch", "fieldSelector", "labelSelector")
# Non-resource paths a caller with any active grant may GET: what Kubernetes' system:discovery and
# system:public-info-viewer roles give every authenticated user, so kubectl can find the API.
DISCOVERY_PATHS = frozenset(
    {"/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi/v2", "/openapi/v3"}
)
_SEGMENT_SAFE = "-._~!$&'()*+,=:@"  # RFC 3986 pchar without ';' (refused) and '%' (escaped)


class KubeRequestError(DomainError):
    """The request cannot be authorized as a Kubernetes API request (the gateway answers 400)."""

    code = "not_a_kubernetes_request"


class NotAKubernetesRequest(KubeRequestError):
    """Not a Kubernetes API path or method."""

    code = "not_a_kubernetes_request"


class AmbiguousRequest(KubeRequestError):
    """The API server might read this request differently from the gateway: refused, never guessed."""

    code = "ambiguous_request"


UPGRADED = ("exec", "attach", "portforward")
"""The pod subresources the API server serves over an upgraded connection."""


@dataclass(frozen=True)
class KubeRequest:
    """A verb on a resource, as RequestInfo describes it (``namespace`` is ``""`` when cluster-wide)."""

    verb: str
    api_group: str
    api_version: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    api_prefix: Literal["api", "apis"] = "api"
    via_path_prefix: bool = False
    """The verb came from a legacy ``/watch/`` or ``/proxy/`` path segment, not from the method."""
    proxy_path: tuple[str, ...] = ()
    """Segments after ``.../proxy`` (a pod's, service's or node's proxy subresource, or the legacy proxy verb)."""
    field_selector: str = ""
    label_selector: str = ""

    @property
    def resource_path(self) -> str:
        """``deployments`` or ``pods/log``: the resource as an RBAC rule names it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def path(self) -> str:
        """The canonical path of this request; :func:`parse_request` of it gives this request back."""
        parts = [self.api_prefix, *([self.api_group] if self.api_prefix == "apis" else []), self.api_version]
        if self.via_path_prefix:
            parts.append(self.verb)
        if self.resource == "namespaces" and self.namespace:
            parts += ["namespaces", self.namespace]
        else:
            if self.namespace:
                parts += ["namespaces", self.namespace]
            parts.append(self.resource)
            if self.name and not self.name_from_selector:
                parts.append(self.name)
        if self.subresource:
            parts.append(self.subresource)
        parts += self.proxy_path
        return "/" + "/".join(quote(p, safe=_SEGMENT_SAFE) for p in parts)

    @property
    def wire_path(self) -> str:
        """The path to forward (:attr:`path`, already escaped)."""
        return self.path

    @property
    def streams(self) -> bool:
        """An answer that may go on for as long as the upstream likes: a watch, a pod's log, anything
        through a proxy (a pod's, service's or node's, or the legacy proxy verb). The gateway passes it
        on as it comes and cuts it when the grant ends, rather than buffering it past the grant's end."""
        return (
            self.verb in ("watch", "proxy")
            or (self.resource, self.subresource) == ("pods", "log")
            or self.subresource == "proxy"
        )

    @property
    def upgrades(self) -> bool:
        """exec, attach or port-forward into a pod: a connection upgraded to a stream of frames both
        ways (websocket; SPDY before kubectl 1.30), whatever the method (a GET is an exec too)."""
        return self.resource == "pods" and self.subresource in UPGRADED and bool(self.name)

    @property
    def name_from_selector(self) -> bool:
        """The name came from ``fieldSelector=metadata.name=...`` of a list or watch, not from the path."""
        return self.verb in ("list", "watch") and not self.via_path_prefix

    @property
    def query_string(self) -> str:
        """The query parameters that decided the verb and the name (``watch=true``, the selectors)."""
        params = [("watch", "true")] if self.verb == "watch" and not self.via_path_prefix else []
        params += [
            (k, v) for k, v in (("fieldSelector", self.field_selector), ("labelSelector", self.label_selector)) if v
        ]
        return "&".join(f"{k}={quote(v, safe='')}" for k, v in params)

    def describe(self) -> str:
        """``patch apps/deployments payments-api in namespace payments``: for refusals and logs."""
        group = f"{self.api_group}/" if self.api_group else ""
        name = f" {self.name}" if self.name else ""
        where = f" in namespace {self.namespace}" if self.namespace else " (cluster-wide)"
        return f"{self.verb} {group}{self.resource_path}{name}{where}"


@dataclass(frozen=True)
class NonResourceRequest:
    """A request for a path that is not an API resource (``verb`` is the lower-case HTTP method)."""

    verb: str
    path: str

    @property
    def is_discovery(self) -> bool:
        """Discovery: what kubectl reads to learn the API (``/api``, ``/apis/apps/v1``, ``/openapi/v3/...``)."""
        if self.verb != "get":
            return False
        if self.path in DISCOVERY_PATHS or self.path.startswith("/openapi/v3/"):
            return True
        parts = self.path.split("/")[1:]
        # /api/<version>, /apis/<group>, /apis/<group>/<version>: non-resource by RequestInfo's rule
        return (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) in (2, 3))

    @property
    def wire_path(self) -> str:
        """The path to forward: :attr:`path` (decoded, as RBAC's nonResourceURLs match it) with each
        segment escaped again, so a decoded ``?`` or ``#`` cannot cut what is sent short of what was checked."""
        return "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in self.path.split("/"))

    def describe(self) -> str:
        return f"{self.verb} {self.path}"


def _unescape(text: str, *, plus_is_space: bool = False) -> str:
    """Strict percent-decoding: every ``%`` starts two hex digits and the bytes are UTF-8."""
    if plus_is_space:
        text = text.replace("+", " ")
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
                raise AmbiguousRequest(f"malformed percent-escape in '{text}'")
            out.append(int(pair, 16))
            i += 3
            continue
        out += char.encode()
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise AmbiguousRequest(f"'{text}' does not decode to UTF-8") from None


def _segments(raw_path: str) -> list[str]:
    if not raw_path.startswith("/"):
        raise NotAKubernetesRequest(f"'{raw_path}' is not a Kubernetes API path: it must start with '/'")
    if raw_path == "/":
        return []
    if any(not 0x21 <= ord(c) <= 0x7E for c in raw_path):
        raise AmbiguousRequest("the path holds a space, a control character or a non-ASCII character unescaped")
    segments = []
    for raw in raw_path[1:].split("/"):
        if raw == "":
            raise AmbiguousRequest(f"'{raw_path}' has an empty segment (a double or trailing slash)")
        segment = _unescape(raw)
        if segment in (".", ".."):
            raise AmbiguousRequest(f"'{raw_path}' has a '{segment}' segment: paths are never resolved here")
        bad = next((c for c in segment if c in "/\\%;" or ord(c) < 0x20 or ord(c) == 0x7F), None)
        if bad is not None:
            raise AmbiguousRequest(f"'{raw_path}' has a segment holding {bad!r} (encoded or not)")
        segments.append(segment)
    return segments


def _query(raw_query: str) -> dict[str, str]:
    """The parameters this parser interprets (first value of each), refusing what Go and Python split differently."""
    if ";" in raw_query:
        raise AmbiguousRequest("';' in the query string: Go drops such a parameter, others split on it")
    seen: dict[str, str] = {}
    for pair in raw_query.split("&") if raw_query else ():
        key, _, value = pair.partition("=")
        key, value = _unescape(key, plus_is_space=True), _unescape(value, plus_is_space=True)
        if key in _INTERPRETED:
            if key in seen:
                raise AmbiguousRequest(f"the query parameter '{key}' is given twice")
            seen[key] = value
    return seen


def _watch(value: str | None) -> bool:
    """``?watch=`` as apimachinery's Convert_Slice_string_To_bool reads it: only absent, ``0`` and
    ``false`` (any case) are false; anything else, the empty string included, is true."""
    return value is not None and value != "0" and value.lower() != "false"


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape_selector_value(value: str) -> str | None:
    out, escaped = "", False
    for char in value:
        if escaped:
            if char not in "\\,=":
                return None
            out += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            return None
        else:
            out += char
    return None if escaped else out


def name_from_field_selector(selector: str) -> str:
    """The name a list or watch is limited to by ``metadata.name=x`` (or ``==``), as apimachinery's
    ``fields.ParseSelector`` + ``RequiresExactMatch`` find it; ``""`` when there is none or the
    selector does not parse (RequestInfo then ignores it, and the list is not limited)."""
    found = ""
    # apimachinery sorts the terms before reading them (fields.parseSelector): with two exact names, the
    # name RequestInfo (and so RBAC's resourceNames) sees is the one whose term sorts first
    for term in sorted(_split_unescaped(selector, ",")):
        if term == "":
            continue
        for index in range(len(term)):
            operator = next((op for op in ("!=", "==", "=") if term.startswith(op, index)), None)
            if operator:
                break
        else:
            return ""  # a term with no operator: the whole selector is invalid
        field, value = term[:index], _unescape_selector_value(term[index + len(operator) :])
        if value is None:
            return ""
        if field == "metadata.name" and operator != "!=" and not found:
            found = value
    if found in (".", "..") or any(c in found for c in "/%"):
        return ""  # not a path segment name (content.IsPathSegmentName): RequestInfo ignores it
    return found


def parse_request(method: str, raw_path: str, raw_query: str = "") -> KubeRequest | NonResourceRequest:
    """What ``method raw_path?raw_query`` asks the Kubernetes API server for.

    ``raw_path`` is the path as received, still percent-encoded (an ASGI scope's ``raw_path``), and
    ``raw_query`` the query string without ``?``. Raises :class:`KubeRequestError`."""
    method = method.upper()
    segments = _segments(raw_path)
    query = _query(raw_query)
    if len(segments) < 3 or segments[0] not in ("api", "apis") or (segments[0] == "apis" and len(segments) < 4):
        return NonResourceRequest(method.lower(), "/" + "/".join(segments))
    prefix: Literal["api", "apis"] = "api" if segments[0] == "api" else "apis"
    parts = segments[1:]
    group = ""
    if prefix == "apis":
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]

    via_path_prefix = parts[0] in _SPECIAL_VERBS
    if via_path_prefix:
        if len(parts) < 2:
            raise NotAKubernetesRequest(f"'{raw_path}' names no resource after '/{parts[0]}'")
        verb, parts = parts[0], parts[1:]
    elif method in _METHOD_VERBS:
        verb = _METHOD_VERBS[method]
    else:
        raise NotAKubernetesRequest(f"the method {method} is not a Kubernetes API verb")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
            if parts[0] == "namespaces":
                raise AmbiguousRequest(f"'{raw_path}' names namespaces inside namespace {namespace}")

    resource, name, subresource = parts[0], "", ""
    rest: tuple[str, ...] = ()
    if len(parts) >= 2:
        name = parts[1]
    if len(parts) >= 3:
        if verb == "proxy":  # the legacy proxy verb has no subresources: the rest is the proxied path
            rest = tuple(parts[2:])
        else:
            subresource, rest = parts[2], tuple(parts[3:])
    if rest and subresource != "proxy" and verb != "proxy":
        raise AmbiguousRequest(f"'{raw_path}' goes on past {resource}/{name}/{subresource}")

    field_selector = label_selector = ""
    if verb == "get" and not name:
        verb = "watch" if _watch(query.get("watch")) else "list"
        name = name_from_field_selector(query.get("fieldSelector", ""))
    if verb == "delete" and not name:
        verb = "deletecollection"
    if not via_path_prefix and verb in _SELECTOR_VERBS:
        field_selector, label_selector = query.get("fieldSelector", ""), query.get("labelSelector", "")
    return KubeRequest(
        verb=verb,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        api_prefix=prefix,
        via_path_prefix=via_path_prefix,
        proxy_path=rest,
        field_selector=field_selector,
        label_selector=label_selector,
    )
