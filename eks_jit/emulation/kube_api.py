"""An emulated Kubernetes API server, small but good enough for real kubectl (1.27-1.33).

It is the upstream local mode's gateway forwards to (cluster ``demo-gateway``), in place of
EKS's API server. It serves:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/apps``, ``/apis/apps/v1``,
  legacy and aggregated (``apidiscovery.k8s.io`` v2 and v2beta1, chosen by the Accept header
  as the real server does); no OpenAPI (kubectl's get, logs, rollout restart and set image
  never ask for it; ``/openapi/*`` answers 404, as a server without it does);
- namespaces, pods, secrets, configmaps (v1) and deployments, replicasets (apps/v1): get,
  list and watch, with label and field selectors as kubectl sends them; a list carries the
  ``resourceVersion`` a watch resumes from; a watch (``?watch=1``) is a chunked stream of JSON
  events that stays open until the client leaves, ``timeoutSeconds`` passes or the server stops;
- deployments: PATCH with strategic-merge and JSON-merge semantics (eks_jit/emulation/kube_patch.py);
  a change bumps the object's ``resourceVersion`` and, when the spec changed, its
  ``generation`` (the emulated rollout completes at once: ``status.observedGeneration`` follows);
  a patch that changes nothing changes nothing, as on a real server;
- ``pods/{name}/log``: plain text (``container``, ``tailLines``); ``follow=true`` streams the
  lines appended later (:meth:`Cluster.append_log`) and stays open until the server stops;
- errors as Kubernetes ``Status`` objects (404 NotFound, 405 MethodNotAllowed, 409 Conflict,
  415 UnsupportedMediaType, 400 BadRequest, 422 Invalid), so kubectl prints them as it would.

It does **not** authorize: whoever reaches it may do anything it serves, under any
impersonated user or group. The gateway in front of it decides (on EKS, the cluster's RBAC and
admission policies would be a second wall; here there is none). Started with a ``token``, it
authenticates the caller as EKS authenticates the gateway's role: a request without that bearer
token is a 401, so nothing on the machine but the gateway can use it. It records what each
request carried (:attr:`Cluster.seen`): method, path, query, the ``Impersonate-User`` /
``Impersonate-Group`` / ``Impersonate-Extra-*`` headers, whether a bearer token came along and
whether it was the server's, so tests can assert what the gateway forwarded, as whom.

Tables (``Accept: ...;as=Table``, what ``kubectl get`` asks for) are served with the real
server's columns (eks_jit/emulation/kube_tables.py); a client that asks for plain JSON gets it.
State lives in memory; :func:`start` serves it over HTTPS with a CA made at start (trustme) on a
background thread; :meth:`KubeApiServer.stop` ends open streams and the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from eks_jit.emulation.kube_patch import PatchError, merge_patch, strategic_merge_patch
from eks_jit.emulation.kube_seed import seed_logs, seed_objects
from eks_jit.emulation.kube_tables import TABLE_MEDIA, table, wants_table
from eks_jit.local.https import HttpsServer, serve_https
from eks_jit.server.domain.kube_status import status

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-eks-jit-emulated",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "1970-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
PATCH_TYPES = {"application/strategic-merge-patch+json": "strategic", "application/merge-patch+json": "merge"}
AGGREGATED = "apidiscovery.k8s.io"
HISTORY = 1000  # watch events kept for a watch that resumes from a resourceVersion


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    subresources: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How Kubernetes names the resource in messages: ``deployments.apps``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


READ = ("get", "list", "watch")
KINDS = (
    Kind("", "v1", "namespaces", "Namespace", False, READ, ("ns",)),
    Kind(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        READ,
        ("po",),
        (("log", ("get",)), ("exec", ("create", "get")), ("attach", ("create", "get"))),
    ),
    Kind("", "v1", "secrets", "Secret", True, READ),
    Kind("", "v1", "configmaps", "ConfigMap", True, READ, ("cm",)),
    Kind("apps", "v1", "deployments", "Deployment", True, (*READ, "patch", "delete"), ("deploy",)),
    Kind("apps", "v1", "replicasets", "ReplicaSet", True, READ, ("rs",)),
)
GROUP_VERSIONS: dict[tuple[str, str], tuple[Kind, ...]] = {}
for _kind in KINDS:
    GROUP_VERSIONS.setdefault((_kind.group, _kind.version), ())
    GROUP_VERSIONS[(_kind.group, _kind.version)] += (_kind,)
BY_API_KIND = {(k.api_version, k.kind): k for k in KINDS}


def kind_named(plural: str) -> Kind:
    found = next((k for k in KINDS if k.plural == plural), None)
    if found is None:
        raise ValueError(f"not a resource this emulation serves: {plural!r}")
    return found


# -- errors as Kubernetes Status objects ----------------------------------------------------------


class ApiError(Exception):
    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status(code, message, details=details)


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(
        404, f'{kind.qualified} "{name}" not found', {"name": name, "group": kind.group, "kind": kind.plural}
    )


NO_SUCH_PATH = "the server could not find the requested resource"


# -- selectors ------------------------------------------------------------------------------------


def _split_requirements(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


@dataclass(frozen=True)
class Requirement:
    """One requirement of a selector: ``key`` ``op`` (``in``, ``notin``, ``exists``, ``!exists``) ``values``."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def holds(self, found: dict[str, Any]) -> bool:
        if self.op == "exists":
            return self.key in found
        if self.op == "!exists":
            return self.key not in found
        return (found.get(self.key) in self.values) == (self.op == "in")


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, found: dict[str, Any]) -> bool:
        return all(r.holds(found) for r in self.requirements)


def label_selector(text: str) -> Selector:
    """A ``labelSelector`` (``a=b,c!=d,e in (f,g),h,!i``); ApiError 400 if malformed."""
    found: list[Requirement] = []
    for requirement in _split_requirements(text):
        words = requirement.split()
        if len(words) >= 3 and words[1] in ("in", "notin"):
            values_text = requirement.split(None, 2)[2].strip()
            if not (values_text.startswith("(") and values_text.endswith(")")):
                raise ApiError(400, f"unable to parse requirement: {requirement!r}")
            values = frozenset(v.strip() for v in values_text[1:-1].split(","))
            found.append(Requirement(words[0], words[1], values))
        elif "!=" in requirement:
            key, value = (part.strip() for part in requirement.split("!=", 1))
            found.append(Requirement(key, "notin", frozenset({value})))
        elif "=" in requirement:
            key, value = (part.strip() for part in requirement.replace("==", "=").split("=", 1))
            found.append(Requirement(key, "in", frozenset({value})))
        elif " " not in requirement:
            negated = requirement.startswith("!")
            found.append(Requirement(requirement.lstrip("!"), "!exists" if negated else "exists"))
        else:
            raise ApiError(400, f"unable to parse requirement: {requirement!r}")
    return Selector(tuple(found))


FIELDS = ("metadata.name", "metadata.namespace")


def field_selector(text: str) -> Selector:
    """``metadata.name`` and ``metadata.namespace`` (``=``, ``==``, ``!=``): what kubectl sends.
    It matches the map of those fields (see :func:`_fields`)."""
    found: list[Requirement] = []
    for requirement in _split_requirements(text):
        negated = "!=" in requirement
        key, equals, value = requirement.replace("!=", "=").replace("==", "=").partition("=")
        if key.strip() not in FIELDS or not equals:
            known = ", ".join(f'"{f}"' for f in FIELDS)
            raise ApiError(400, f'"{key.strip()}" is not a known field selector: only {known}')
        found.append(Requirement(key.strip(), "notin" if negated else "in", frozenset({value.strip()})))
    return Selector(tuple(found))


def _fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    return {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}


# -- the cluster's state --------------------------------------------------------------------------

Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name
CLOSED: dict[str, Any] = {"type": "CLOSED"}


@dataclass(frozen=True)
class Seen:
    """One request as it reached the emulated API server."""

    method: str
    path: str
    query: str
    user: str | None
    groups: tuple[str, ...]
    extra: dict[str, tuple[str, ...]]
    bearer_token: bool  # an Authorization: Bearer header came along
    authenticated: bool  # ... and it was the server's token (always true when the server needs none)
    accept: str
    content_type: str
    body: bytes


@dataclass
class _Stream:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    accepts: Callable[[str, dict[str, Any]], bool]

    def put(self, item: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the stream's loop is gone: nobody is listening
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


@dataclass
class Cluster:
    """The emulated cluster's objects, pod logs and the requests it saw. Thread-safe: the server's
    event loop and the tests' threads both use it."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _logs: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    _history: list[tuple[int, Kind, dict[str, Any]]] = field(default_factory=list)
    _streams: list[_Stream] = field(default_factory=list)
    _seen: list[Seen] = field(default_factory=list)
    _revision: int = 1000
    _closed: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def seeded(cls, now: Callable[[], datetime] | None = None) -> Cluster:
        cluster = cls(now=now) if now else cls()
        for obj in seed_objects(cluster.now()):
            cluster.add(obj)
        for (namespace, pod, container), lines in seed_logs().items():
            for line in lines:
                cluster.append_log(namespace, pod, line, container)
        return cluster

    # -- objects

    @staticmethod
    def kind_of(obj: dict[str, Any]) -> Kind:
        kind = BY_API_KIND.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if kind is None:
            raise ValueError(f"not a kind this emulation serves: {obj.get('apiVersion')} {obj.get('kind')}")
        return kind

    @staticmethod
    def _key(kind: Kind, namespace: str | None, name: str) -> Key:
        return (kind.group, kind.plural, (namespace or "") if kind.namespaced else "", name)

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` (an ADDED event); ValueError if it exists or is not a served kind."""
        kind = self.kind_of(obj)
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        key = self._key(kind, meta.get("namespace"), meta["name"])
        with self._lock:
            if key in self._objects:
                raise ValueError(f"{kind.qualified} {meta['name']!r} exists")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", self.now().strftime("%Y-%m-%dT%H:%M:%SZ"))
            if "spec" in new and kind.plural in ("deployments", "replicasets"):
                meta.setdefault("generation", 1)
            self._store(kind, key, new, "ADDED")
        return copy.deepcopy(new)

    def delete(self, kind_plural: str, namespace: str | None, name: str) -> None:
        """Remove an object (a DELETED event); KeyError if there is none."""
        kind = kind_named(kind_plural)
        key = self._key(kind, namespace, name)
        with self._lock:
            obj = self._objects.pop(key)
            self._revision += 1
            obj["metadata"]["resourceVersion"] = str(self._revision)
            self._notify(kind, "DELETED", obj)

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            found = self._objects.get(self._key(kind, namespace, name))
            if found is None:
                raise not_found(kind, name)
            return copy.deepcopy(found)

    def object(self, kind_plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        """The stored object by its plural (``deployments``), for tests; ApiError 404 if none."""
        return self.get(kind_named(kind_plural), namespace, name)

    def items(
        self, kind: Kind, namespace: str | None, labels: str = "", fields: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        matches = self._matcher(labels, fields)
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (group, plural, ns, _), obj in sorted(self._objects.items())
                if (group, plural) == (kind.group, kind.plural) and (not namespace or ns == namespace) and matches(obj)
            ]
            return items, str(self._revision)

    def patch(self, kind: Kind, namespace: str | None, name: str, content_type: str, body: bytes) -> dict[str, Any]:
        how = PATCH_TYPES.get(content_type.split(";")[0].strip().lower())
        if how is None:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(PATCH_TYPES),
            )
        try:
            patch = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, f"error decoding patch: {exc}") from None
        key = self._key(kind, namespace, name)
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                raise not_found(kind, name)
            try:
                new = strategic_merge_patch(old, patch) if how == "strategic" else merge_patch(old, patch)
            except PatchError as exc:
                raise ApiError(422, f'{kind.kind} "{name}" is invalid: {exc}') from None
            if not isinstance(new, dict):
                raise ApiError(422, f'{kind.kind} "{name}" is invalid: the patched object is not an object')
            wanted = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if wanted is not None and wanted != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
            immutable = ("name", "namespace", "uid", "creationTimestamp", "resourceVersion", "generation")
            new_meta = new.setdefault("metadata", {})
            for item in immutable:
                if item in old["metadata"]:
                    new_meta[item] = old["metadata"][item]
            new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
            if new.get("spec") != old.get("spec"):
                new_meta["generation"] = old["metadata"].get("generation", 1) + 1
                if kind.plural == "deployments":  # the emulated rollout completes at once
                    new.setdefault("status", {})["observedGeneration"] = new_meta["generation"]
            if new == old:
                return copy.deepcopy(old)
            self._store(kind, key, new, "MODIFIED")
            return copy.deepcopy(new)

    def _store(self, kind: Kind, key: Key, obj: dict[str, Any], event: str) -> None:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[key] = obj
        self._notify(kind, event, obj)

    def _notify(self, kind: Kind, event_type: str, obj: dict[str, Any]) -> None:
        event = {"type": event_type, "object": copy.deepcopy(obj)}
        self._history.append((self._revision, kind, event))
        del self._history[:-HISTORY]
        for stream in self._streams:
            if stream.accepts(kind.plural, obj):
                stream.put(event)

    @staticmethod
    def _matcher(labels: str, fields: str) -> Callable[[dict[str, Any]], bool]:
        by_labels, by_fields = label_selector(labels), field_selector(fields)
        return lambda obj: (
            by_labels.matches(obj.get("metadata", {}).get("labels") or {}) and by_fields.matches(_fields(obj))
        )

    # -- watches and followed logs

    def watch(
        self, kind: Kind, namespace: str | None, labels: str, fields: str, since: str | None
    ) -> tuple[_Stream, list[dict[str, Any]]]:
        """A stream of the events after ``since`` (a resourceVersion; none or "0": ADDED for what
        exists now) and what it replays first. The caller must :meth:`unsubscribe` it."""
        matches = self._matcher(labels, fields)

        def accepts(plural: str, obj: dict[str, Any]) -> bool:
            in_namespace = not namespace or obj["metadata"].get("namespace") == namespace
            return plural == kind.plural and in_namespace and matches(obj)

        stream = _Stream(asyncio.get_running_loop(), asyncio.Queue(), accepts)
        with self._lock:
            if since in (None, "", "0"):
                items, _ = self.items(kind, namespace, labels, fields)
                replay = [{"type": "ADDED", "object": obj} for obj in items]
            else:
                try:
                    after = int(since)
                except ValueError:
                    raise ApiError(400, f"invalid resource version {since!r}") from None
                oldest = self._history[0][0] if self._history else self._revision
                if after < oldest - 1 and len(self._history) >= HISTORY:
                    gone = status(410, f"too old resource version: {after} ({oldest})", reason="Expired")
                    replay = [{"type": "ERROR", "object": gone}]
                else:
                    replay = [
                        copy.deepcopy(event)
                        for revision, k, event in self._history
                        if revision > after and accepts(k.plural, event["object"])
                    ]
            if self._closed:
                replay.append(CLOSED)
            self._streams.append(stream)
        return stream, replay

    def follow_log(self, namespace: str, pod: str, container: str) -> tuple[_Stream, list[str]]:
        def accepts(plural: str, item: dict[str, Any]) -> bool:
            return plural == "pods/log" and item.get("at") == (namespace, pod, container)

        stream = _Stream(asyncio.get_running_loop(), asyncio.Queue(), accepts)
        with self._lock:
            lines = list(self._logs.get((namespace, pod, container), []))
            self._streams.append(stream)
            if self._closed:
                stream.put(CLOSED)
        return stream, lines

    def unsubscribe(self, stream: _Stream) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._streams.remove(stream)

    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def append_log(self, namespace: str, pod: str, line: str, container: str | None = None) -> None:
        """A container writes ``line``; a follower of that log receives it."""
        with self._lock:
            found = self.get(KINDS[1], namespace, pod)
            container = container or found["spec"]["containers"][0]["name"]
            self._logs.setdefault((namespace, pod, container), []).append(line)
            for stream in self._streams:
                if stream.accepts("pods/log", {"at": (namespace, pod, container)}):
                    stream.put({"line": line})

    def log(self, namespace: str, pod: str, container: str) -> list[str]:
        with self._lock:
            return list(self._logs.get((namespace, pod, container), []))

    def close(self) -> None:
        """End every open watch and followed log (and those opened later)."""
        with self._lock:
            self._closed = True
            for stream in self._streams:
                stream.put(CLOSED)

    # -- what the server saw

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def clear_seen(self) -> None:
        with self._lock:
            self._seen.clear()


# -- discovery ------------------------------------------------------------------------------------


def _resource_list(group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in GROUP_VERSIONS[(group, version)]:
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.singular,
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": list(kind.verbs),
                **({"shortNames": list(kind.short_names)} if kind.short_names else {}),
            }
        )
        for sub, verbs in kind.subresources:
            resources.append(
                {"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced, "kind": kind.kind}
                | {"verbs": list(verbs)}
            )
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for (g, v) in GROUP_VERSIONS if g == name]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def _aggregated(groups: list[str], api_version: str) -> dict[str, Any]:
    items = []
    for name in groups:
        versions = []
        for (group, version), kinds in GROUP_VERSIONS.items():
            if group != name:
                continue
            resources = [
                {
                    "resource": k.plural,
                    "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
                    "scope": "Namespaced" if k.namespaced else "Cluster",
                    "singularResource": k.singular,
                    "verbs": list(k.verbs),
                    **({"shortNames": list(k.short_names)} if k.short_names else {}),
                    **(
                        {
                            "subresources": [
                                {
                                    "subresource": sub,
                                    "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                                    "verbs": list(verbs),
                                }
                                for sub, verbs in k.subresources
                            ]
                        }
                        if k.subresources
                        else {}
                    ),
                }
                for k in kinds
            ]
            versions.append({"version": version, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": name, "creationTimestamp": None}, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def _aggregated_version(accept: str) -> str | None:
    """The apidiscovery version the client accepts first (``v2``, ``v2beta1``), if any."""
    for media in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in media.split(";")[1:])
        discovery_list = params.get("g") == AGGREGATED and params.get("as") == "APIGroupDiscoveryList"
        if discovery_list and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
    return None


def discovery(path: str, accept: str, host: str) -> tuple[dict[str, Any], str] | None:
    """The discovery document at ``path`` and its content type, or None for no such path."""
    json_type = "application/json"
    if path == "/version":
        return SERVER_VERSION, json_type
    if path in ("/api", "/apis"):
        version = _aggregated_version(accept)
        if version:
            names = [""] if path == "/api" else sorted({g for g, _ in GROUP_VERSIONS if g})
            media = f"application/json;g={AGGREGATED};v={version};as=APIGroupDiscoveryList"
            return _aggregated(names, f"{AGGREGATED}/{version}"), media
        if path == "/api":
            address = [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": address}, json_type
        groups = [_group(g) for g in sorted({g for g, _ in GROUP_VERSIONS if g})]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}, json_type
    parts = path.strip("/").split("/")
    if parts == ["api", "v1"]:
        return _resource_list("", "v1"), json_type
    if len(parts) == 2 and parts[0] == "apis" and any(g == parts[1] for g, _ in GROUP_VERSIONS):
        return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1])}, json_type
    if len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in GROUP_VERSIONS:
        return _resource_list(parts[1], parts[2]), json_type
    return None


# -- the ASGI app ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    kind: Kind
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_path(path: str) -> Target:
    """``/api/v1/namespaces/payments/pods/x/log`` -> pods, payments, x, log; ApiError 404 otherwise."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, NO_SUCH_PATH)
    kinds = {k.plural: k for k in GROUP_VERSIONS.get((group, version), ())}
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in kinds and kinds[rest[2]].namespaced:
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] not in kinds or len(rest) > 3:
        raise ApiError(404, NO_SUCH_PATH)
    kind = kinds[rest[0]]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if subresource is not None and subresource not in dict(kind.subresources):
        raise ApiError(404, NO_SUCH_PATH)
    return Target(kind, namespace, name, subresource)


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def create_app(cluster: Cluster, token: str | None = None) -> Any:
    """The emulated API server as an ASGI app. With ``token``, a request without
    ``Authorization: Bearer <token>`` is answered 401 (recorded all the same), as EKS answers a
    caller it cannot authenticate: so only the holder (the gateway) can reach it, and impersonate."""
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    def answer(payload: Any, code: int = 200, media_type: str = "application/json") -> Response:
        return Response(json.dumps(payload), code, media_type=media_type)

    def witnessed(connection: HTTPConnection, method: str, body: bytes) -> bool:
        """Record the request as it arrived; whether it presented the server's token."""
        headers = connection.headers
        authorization = headers.get("authorization", "")
        presented = authorization[7:] if authorization.lower().startswith("bearer ") else None
        authenticated = token is None or (presented is not None and hmac.compare_digest(presented, token))
        cluster.record(
            Seen(
                method=method,
                path=connection.url.path,
                query=connection.url.query,
                user=headers.get("impersonate-user"),
                groups=tuple(headers.getlist("impersonate-group")),
                extra={
                    # the API server percent-decodes the key (unescapeExtraKey), never the values
                    unquote(k[len("impersonate-extra-") :]): tuple(headers.getlist(k))
                    for k in dict.fromkeys(headers.keys())
                    if k.startswith("impersonate-extra-")
                },
                bearer_token=presented is not None,
                authenticated=authenticated,
                accept=headers.get("accept", ""),
                content_type=headers.get("content-type", ""),
                body=body,
            )
        )
        return authenticated

    async def upgraded(ws: WebSocket) -> None:
        """exec or attach into a pod over a websocket (emulation/kube_exec.py)."""
        from . import kube_exec

        if not witnessed(ws, "GET", b""):
            await ws.send_denial_response(JSONResponse(status(401, "Unauthorized", reason="Unauthorized"), 401))
            return
        try:
            target = parse_path(ws.url.path)
            if target.kind.plural != "pods" or target.name is None or target.subresource not in ("exec", "attach"):
                raise ApiError(400, "the emulated API server upgrades only pods/exec and pods/attach")
            pod = cluster.get(target.kind, target.namespace, target.name)
            protocol = kube_exec.chosen_protocol(list(ws.scope.get("subprotocols") or []))
        except ApiError as exc:
            await ws.send_denial_response(JSONResponse(exc.status, exc.status["code"]))
            return
        except kube_exec.Refused as refused:
            await ws.send_denial_response(JSONResponse(status(refused.code, refused.message), refused.code))
            return
        command = ws.query_params.getlist("command")
        await kube_exec.session(ws, pod, target.subresource, command, protocol)

    async def handle(request: Request) -> Response:
        body = await request.body()
        authenticated = witnessed(request, request.method, body)
        if not authenticated:
            return JSONResponse(status(401, "Unauthorized", reason="Unauthorized"), 401)
        try:
            return await dispatch(request, body)
        except ApiError as exc:
            return JSONResponse(exc.status, exc.status["code"])

    async def dispatch(request: Request, body: bytes) -> Response:
        path, query = request.url.path, request.query_params
        if request.method == "GET":
            found = discovery(path, request.headers.get("accept", ""), request.url.netloc)
            if found is not None:
                return answer(*found[:1], media_type=found[1])
        target = parse_path(path)
        kind = target.kind
        as_table = wants_table(request.headers.get("accept", ""))
        if target.subresource == "log":
            if request.method != "GET":
                raise ApiError(
                    405, f"the server does not allow this method on the requested resource ({request.method})"
                )
            return await pod_log(target, query)
        if request.method == "GET" and target.name is None:
            labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
            if _true(query.get("watch")):
                since, timeout = query.get("resourceVersion"), query.get("timeoutSeconds")
                return watch(target, labels, fields, since, timeout, as_table)
            items, revision = cluster.items(kind, target.namespace, labels, fields)
            if as_table:
                return answer(table(kind.plural, items, cluster.now(), revision), media_type=TABLE_MEDIA)
            return answer(
                {
                    "kind": f"{kind.kind}List",
                    "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": revision},
                    "items": items,
                }
            )
        if target.name is None:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({request.method})")
        if request.method == "GET":
            obj = cluster.get(kind, target.namespace, target.name)
            if as_table:
                return answer(table(kind.plural, [obj], cluster.now()), media_type=TABLE_MEDIA)
            return answer(obj)
        if request.method == "PATCH" and "patch" in kind.verbs:
            content_type = request.headers.get("content-type", "")
            return answer(cluster.patch(kind, target.namespace, target.name, content_type, body))
        if request.method == "DELETE" and "delete" in kind.verbs:
            gone = cluster.get(kind, target.namespace, target.name)  # 404 as the API server's, if there is none
            cluster.delete(kind.plural, target.namespace, target.name)
            # what the API server answers a delete that took effect at once (no finalizers): a Success Status
            details = {
                "name": target.name,
                "group": kind.group,
                "kind": kind.plural,
                "uid": gone["metadata"].get("uid"),
            }
            return answer(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
            )
        raise ApiError(405, f"the server does not allow this method on the requested resource ({request.method})")

    def watch(
        target: Target, labels: str, fields: str, since: str | None, timeout: str | None, as_table: bool
    ) -> Response:
        stream, replay = cluster.watch(target.kind, target.namespace, labels, fields, since)
        deadline = time.monotonic() + float(timeout) if timeout and timeout.isdigit() else None

        def encoded(event: dict[str, Any]) -> bytes:
            if as_table and event["type"] != "ERROR":
                obj = event["object"]
                rows = table(target.kind.plural, [obj], cluster.now(), obj["metadata"]["resourceVersion"])
                event = {"type": event["type"], "object": rows}
            return json.dumps(event).encode() + b"\n"

        async def events() -> AsyncIterator[bytes]:
            try:
                for event in replay:
                    if event is CLOSED:
                        return
                    yield encoded(event)
                while True:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    try:
                        event = await asyncio.wait_for(stream.queue.get(), left)
                    except TimeoutError:
                        return
                    if event is CLOSED:
                        return
                    yield encoded(event)
            finally:
                cluster.unsubscribe(stream)

        return StreamingResponse(events(), media_type=TABLE_MEDIA if as_table else "application/json")

    async def pod_log(target: Target, query: Any) -> Response:
        assert target.name is not None and target.namespace is not None
        pod = cluster.get(target.kind, target.namespace, target.name)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container") or (containers[0] if len(containers) == 1 else None)
        if container is None:
            raise ApiError(
                400,
                f"a container name must be specified for pod {target.name}, choose one of: [{' '.join(containers)}]",
            )
        if container not in containers:
            raise ApiError(400, f"container {container} is not valid for pod {target.name}")
        tail = query.get("tailLines")
        if tail is not None and not tail.isdigit():
            raise ApiError(400, f"tailLines must be a non-negative integer: {tail!r}")

        def tailed(lines: list[str]) -> list[str]:
            return lines[len(lines) - int(tail) :] if tail is not None and int(tail) < len(lines) else lines

        if not _true(query.get("follow")):
            lines = tailed(cluster.log(target.namespace, target.name, container))
            return PlainTextResponse("".join(line + "\n" for line in lines))
        stream, lines = cluster.follow_log(target.namespace, target.name, container)

        async def followed() -> AsyncIterator[bytes]:
            try:
                for line in tailed(lines):
                    yield line.encode() + b"\n"
                while (item := await stream.queue.get()) is not CLOSED:
                    yield item["line"].encode() + b"\n"
            finally:
                cluster.unsubscribe(stream)

        return StreamingResponse(followed(), media_type="text/plain")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    routes = [WebSocketRoute("/{path:path}", upgraded), Route("/{path:path}", handle, methods=methods)]
    return _uncached(Starlette(routes=routes))


def _uncached(app: Any) -> Any:
    """Every answer says ``Cache-Control: no-cache, private``, as the real API server's does.
    kubectl keeps an HTTP cache (``--cache-dir``) and would otherwise serve a response again
    without asking, for as long as the response's Date lies ahead of its own clock (a 401 kept
    that way refused a later, valid token)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"cache-control", b"no-cache, private")],
                }
            await send(message)

        await app(scope, receive, sending)

    return wrapped


# -- serving it -----------------------------------------------------------------------------------


@dataclass
class KubeApiServer:
    """A running emulated API server: ``url`` and ``ca_pem`` are what a kubeconfig needs."""

    cluster: Cluster
    server: HttpsServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_pem(self) -> str:
        return self.server.ca_pem

    def endpoint(self) -> tuple[str, str]:
        return self.url, self.ca_pem

    def kubeconfig(
        self,
        token: str = "emulated",  # noqa: S107 (the emulation checks no token)
        namespace: str = "default",
        name: str = "demo-gateway",
    ) -> dict[str, Any]:
        """A kubeconfig (as a dict: write it as JSON or YAML) for this server with a static token."""
        import base64

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(self.ca_pem.encode()).decode(),
                    },
                }
            ],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
            "current-context": name,
        }

    def stop(self, timeout: float = 5.0) -> None:
        """End open watches and followed logs, then the server; returns once its thread is done."""
        self.cluster.close()
        self.server.stop(timeout)


def start(
    cluster: Cluster | None = None, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> KubeApiServer:
    """Serve ``cluster`` (the seeded one by default) over HTTPS on ``host:port`` (0: a free port),
    with a certificate for 127.0.0.1 and localhost from a CA made now; with ``token``, only to
    callers that present it (see :func:`create_app`). OSError if the port is busy."""
    cluster = cluster or Cluster.seeded()
    server = serve_https(
        create_app(cluster, token),
        host=host,
        port=port,
        name="kube-api",
        organization="eks-jit local emulated Kubernetes API",
    )
    return KubeApiServer(cluster, server)


@contextlib.contextmanager
def serve(
    cluster: Cluster | None = None, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> Iterator[KubeApiServer]:
    running = start(cluster, host, port, token)
    try:
        yield running
    finally:
        running.stop()
