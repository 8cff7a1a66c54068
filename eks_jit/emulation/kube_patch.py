"""The two patch kinds kubectl sends, applied as the Kubernetes API server applies them.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): objects merge, ``null``
  deletes, anything else (lists too) replaces.
- Strategic merge patch (``application/strategic-merge-patch+json``, what ``kubectl rollout
  restart``, ``set image`` and ``patch`` without ``--type`` send): a merge patch in which the
  lists the Kubernetes types mark ``patchStrategy: merge`` merge their items by a key
  (containers by ``name``...) instead of being replaced, plus the directives kubectl writes:
  ``$patch`` (``replace``, ``delete``, ``merge``), ``$setElementOrder/<list>``, ``$retainKeys``
  and ``$deleteFromPrimitiveList/<list>``. The merge keys are looked up by field name, which is
  exact for the apps/v1 and core/v1 workload types this emulation serves (a Service's ``ports``
  would merge by ``port``: not served here). Any other directive is a PatchError.

Pure functions on JSON values; the inputs are never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

# list field -> the key its items merge by (k8s.io/api: the `patchMergeKey` of each
# `patchStrategy:"merge"` list in PodSpec, Container, DeploymentStatus and ObjectMeta)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
# lists of scalars that strategic merge unions (`patchStrategy:"merge"` on a []string)
MERGED_SCALAR_LISTS = frozenset({"finalizers"})

_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


class PatchError(ValueError):
    """The patch cannot be applied (the API server answers 422 or 400)."""


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(original: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_object(original if isinstance(original, dict) else {}, patch)


def _merge_object(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if directive not in (None, "merge"):
        raise PatchError(f"$patch: {directive!r} is not allowed on an object here")
    result = copy.deepcopy(original)
    orders = {key[len(_ORDER) :]: _list(value, key) for key, value in patch.items() if key.startswith(_ORDER)}
    retain: list[str] | None = None
    for key, value in patch.items():
        if key == "$patch" or key.startswith(_ORDER):
            continue
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM) :]
            gone = _list(value, key)
            result[field] = [item for item in result.get(field) or [] if item not in gone]
        elif key == "$retainKeys":
            retain = [str(k) for k in _list(value, key)]
        elif key.startswith("$"):
            raise PatchError(f"unknown strategic merge patch directive {key!r}")
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = result.get(key)
            result[key] = _merge_object(merged if isinstance(merged, dict) else {}, value)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value, orders.get(key))
        else:
            result[key] = value
    for field, order in orders.items():
        if field not in patch and isinstance(result.get(field), list):
            result[field] = _merge_list(field, result[field], [], order)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, original: Any, patch: list[Any], order: list[Any] | None) -> list[Any]:
    """A list patched by its strategy: replaced, unless ``field`` merges (by key, or as a set of
    scalars). The items the patch names then come in its order (or ``$setElementOrder``'s), and
    the others keep their place among them (apimachinery's mergeSortedSlice)."""
    current = copy.deepcopy(original) if isinstance(original, list) else []
    key = MERGE_KEYS.get(field)
    scalars = field in MERGED_SCALAR_LISTS

    def identity(item: Any) -> Any:
        return item.get(key) if key and not scalars and isinstance(item, dict) else item

    server = [identity(item) for item in current]
    if scalars:
        result = current + [item for item in patch if item not in current]
    elif key is None or not all(isinstance(item, dict) for item in patch):
        return [_strip(item) for item in patch]  # lists without a merge key are replaced
    elif any(item.get("$patch") == "replace" for item in patch):
        return [_strip(item) for item in patch if item.get("$patch") != "replace"]
    else:
        result = current
        for item in patch:
            if key not in item:
                raise PatchError(f"an item of {field!r} has no merge key {key!r}")
            at = next((i for i, old in enumerate(result) if identity(old) == item[key]), None)
            if item.get("$patch") == "delete":
                if at is not None:
                    del result[at]
            elif at is None:
                result.append(_merge_object({}, item))
            else:
                result[at] = _merge_object(result[at], item)
    named = list(dict.fromkeys(identity(item) for item in (order if order is not None else patch)))
    right = [item for name in named for item in result if identity(item) == name]
    left = [item for item in result if identity(item) not in named]
    return _merge_sorted(left, right, server, identity)


def _merge_sorted(left: list[Any], right: list[Any], server: list[Any], identity: Callable[[Any], Any]) -> list[Any]:
    """``left`` (items the patch did not name, in server order) woven into ``right`` (the named
    ones, in the patch's order): a left item goes first only when both are on the server and it
    came first there."""

    def before(one: Any, other: Any) -> bool:
        a, b = identity(one), identity(other)
        return a in server and b in server and server.index(a) < server.index(b)

    merged: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right) or (i < len(left) and before(left[i], right[j])):
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise PatchError(f"{key} must be a list")
    return value


def _strip(value: Any) -> Any:
    """A value new to the object: merged into nothing, so its own directives apply."""
    return _merge_object({}, value) if isinstance(value, dict) else copy.deepcopy(value)
