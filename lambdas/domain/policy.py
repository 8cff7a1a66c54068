"""Who may request what, for how long, and who must approve: Cedar policies via ``cedarpy``.

A request is the Cedar request ``principal`` (caller) ``request`` ``resource`` (cluster) with
``context`` = scope, namespace and duration. What a *permit* means beyond allow comes from its
annotations, validated when the policy set loads (tests and ``cdk synth`` load it, so a bad
policy never reaches a live request):

``@approval("auto"|"manual")``   required on every permit
``@max_duration("15m")``         required on every permit
``@approvals("1")``              manual only: how many distinct approvers (default 1)
``@approvers("group:payments-approvers, approver-alice")``  manual only: who may approve
``@approval_timeout("1h")``      manual only: how long approvers have (default 1h)
``@reason("...")``               on a forbid: the message the requester sees

When several permits match, the one that is auto-approved and long enough wins, then the
manual one with the fewest approvals. A matching forbid always wins.

**Guardrails** (action ``kube``: one Kubernetes request through the gateway, already covered by a
grant): a ``forbid`` blocks it (``@reason`` is what kubectl prints); a ``permit`` must be
``@approval("manual")`` with ``@approvers`` (``@approvals``, ``@approval_timeout`` as above, no
``@max_duration``): it holds that one command for approval. A request no guardrail matches passes
(the grant already allows it): :meth:`PolicySet.guard`. A permit that names no action is read as a
``request`` permit (it never holds a command).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import cedarpy

from .approvals import DEFAULT_APPROVAL_TIMEOUT
from .catalog import Catalog, Level
from .durations import DurationFormatError, format_duration, parse_duration
from .grant import Decision
from .question import AccessQuestion

SCHEMA = resources.files(__package__).joinpath("policy.cedarschema").read_text()
NS = "EksJit"


class PolicyError(ValueError):
    """The policy set does not parse, does not validate, or references something unknown."""


@dataclass(frozen=True)
class Rule:
    """One policy of the set with its annotations read."""

    key: str  # cedarpy's positional id, policy0...
    name: str  # @id, or the positional id
    effect: str
    approval: str = ""
    max_duration: timedelta | None = None
    approvals: int = 0
    approvers: tuple[str, ...] = ()
    approval_timeout: timedelta | None = None
    reason: str = ""
    action: str = "request"  # or "kube" (a guardrail); "any" for a forbid naming no action
    # (a permit naming no action is read as a request permit: it holds no command)


@dataclass(frozen=True)
class KubeQuestion:
    """One Kubernetes request the gateway asks guardrails about (``""`` for what it does not have)."""

    principal: str
    cluster: str
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    scope: str
    session: str = ""


@dataclass(frozen=True)
class Guard:
    outcome: str  # "pass", "block" or "hold"
    policy_ids: tuple[str, ...] = ()
    reason: str = ""
    approvals_required: int = 0
    approvers: tuple[str, ...] = ()
    approval_timeout: timedelta | None = None


# Guardrails are exceptions to what a grant allows: with no guardrail matching, a request passes.
_PASS_THROUGH = "eks-jit-guardrails-pass"  # noqa: S105 - a policy id
_PASS = f'\n@id("{_PASS_THROUGH}")\npermit (principal, action == {NS}::Action::"kube", resource);\n'


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": f"{NS}::{kind}", "id": ident}


def _entity_refs(node: Any) -> Iterator[tuple[str, str]]:
    """Every entity literal in a policy's JSON form, as (type, id)."""
    if isinstance(node, dict):
        if "__entity" in node:
            yield node["__entity"]["type"], node["__entity"]["id"]
        elif {"type", "id"} <= node.keys() and isinstance(node.get("id"), str):
            yield node["type"], node["id"]
        for value in node.values():
            yield from _entity_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _entity_refs(value)


class PolicySet:
    """A validated policy set, bound to the catalog it talks about."""

    def __init__(self, text: str, catalog: Catalog) -> None:
        self._text = text
        self._catalog = catalog
        result = cedarpy.validate_policies(text, SCHEMA)
        if not result.validation_passed:
            raise PolicyError("; ".join(e.error for e in result.errors))
        parsed = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
        self._check_references(parsed)
        self.rules = {key: self._rule(key, body) for key, body in parsed.items()}
        self._static_entities = self._catalog_entities()
        # guardrails are evaluated with eks-jit's pass-through permit appended: the policies before it
        # keep their positional keys (policy0...), so a reason maps back to its rule
        self._guard_text = text + _PASS
        self._guard_rules = dict(self.rules)
        self._guard_handles: tuple[Any, Any, Any] | None = None  # parsed once, on the first guard

    # -- loading -----------------------------------------------------------------------------

    def _check_references(self, parsed: dict[str, Any]) -> None:
        known = {
            f"{NS}::Scope": set(self._catalog.scopes),
            f"{NS}::Cluster": set(self._catalog.clusters),
            f"{NS}::Group": {g for p in self._catalog.principals for g in p.groups},
            f"{NS}::Principal": {p.arn for p in self._catalog.principals},
            f"{NS}::Action": {"request", "kube"},
        }
        for key, body in parsed.items():
            for kind, ident in _entity_refs(body):
                if kind in known and ident not in known[kind]:
                    name = body.get("annotations", {}).get("id", key)
                    raise PolicyError(f"policy '{name}' references unknown {kind.split('::')[-1]} '{ident}'")

    def _rule(self, key: str, body: dict[str, Any]) -> Rule:
        notes: dict[str, str] = body.get("annotations", {})
        name = notes.get("id", key)
        constraint = body.get("action", {})
        action = constraint.get("entity", {}).get("id", "") if constraint.get("op") == "==" else ""
        if name == _PASS_THROUGH:
            raise PolicyError(f"@id('{_PASS_THROUGH}') is eks-jit's own")
        if body["effect"] == "forbid":
            reason = notes.get("reason", f"refused by policy {name}")
            return Rule(key=key, name=name, effect="forbid", reason=reason, action=action or "any")
        if action == "kube":
            return self._guardrail_permit(key, name, notes)
        approval = notes.get("approval")
        if approval not in ("auto", "manual"):
            raise PolicyError(f'permit \'{name}\' needs @approval("auto") or @approval("manual")')
        if "max_duration" not in notes:
            raise PolicyError(f"permit '{name}' needs @max_duration(...)")
        try:
            max_duration = parse_duration(notes["max_duration"])
            timeout = parse_duration(notes.get("approval_timeout", "1h"))
        except DurationFormatError as exc:
            raise PolicyError(f"permit '{name}': {exc}") from exc
        if approval == "auto":
            return Rule(key=key, name=name, effect="permit", approval="auto", max_duration=max_duration)
        approvers = tuple(self._approver(name, a) for a in notes.get("approvers", "").split(",") if a.strip())
        if not approvers:
            raise PolicyError(f"manual permit '{name}' needs @approvers(\"group:<name>, <principal name>\")")
        try:
            approvals = int(notes.get("approvals", "1"))
        except ValueError:
            raise PolicyError(f"permit '{name}': @approvals must be a whole number") from None
        if approvals < 1:
            raise PolicyError(f"permit '{name}': @approvals must be at least 1")
        return Rule(
            key=key,
            name=name,
            effect="permit",
            approval="manual",
            max_duration=max_duration,
            approvals=approvals,
            approvers=approvers,
            approval_timeout=timeout,
        )

    def _guardrail_permit(self, key: str, name: str, notes: dict[str, str]) -> Rule:
        if notes.get("approval") != "manual":
            raise PolicyError(f"guardrail permit '{name}' holds a command: it needs @approval(\"manual\")")
        if "max_duration" in notes:
            raise PolicyError(f"guardrail permit '{name}': @max_duration is for grants, a held command passes once")
        approvers = tuple(self._approver(name, a) for a in notes.get("approvers", "").split(",") if a.strip())
        if not approvers:
            raise PolicyError(f"guardrail permit '{name}' needs @approvers(\"group:<name>, <principal name>\")")
        try:
            approvals = int(notes.get("approvals", "1"))
            timeout = parse_duration(notes.get("approval_timeout", "1h"))
        except (ValueError, DurationFormatError) as exc:
            raise PolicyError(f"guardrail permit '{name}': {exc}") from None
        if approvals < 1:
            raise PolicyError(f"guardrail permit '{name}': @approvals must be at least 1")
        return Rule(
            key=key,
            name=name,
            effect="permit",
            approval="manual",
            approvals=approvals,
            approvers=approvers,
            approval_timeout=timeout,
            action="kube",
        )

    def _approver(self, rule: str, text: str) -> str:
        """``group:<name>`` stays a group reference; a principal name becomes its ARN."""
        entry = text.strip()
        if entry.startswith("group:"):
            if entry[6:] not in {g for p in self._catalog.principals for g in p.groups}:
                raise PolicyError(f"permit '{rule}' names unknown approver group '{entry[6:]}'")
            return entry
        found = next((p for p in self._catalog.principals if entry in (p.name, p.arn)), None)
        if not found:
            raise PolicyError(f"permit '{rule}' names unknown approver '{entry}'")
        if found.kind != "human":
            raise PolicyError(f"permit '{rule}': approver '{entry}' is not a human")
        return found.arn

    def _catalog_entities(self) -> list[dict[str, Any]]:
        c = self._catalog
        groups = sorted({g for p in c.principals for g in p.groups})
        return [
            *({"uid": _uid("Group", g), "attrs": {}, "parents": []} for g in groups),
            *(
                {"uid": _uid("Scope", name), "attrs": {"level": s.level.value}, "parents": []}
                for name, s in c.scopes.items()
            ),
            *(
                {
                    "uid": _uid("Cluster", name),
                    "attrs": {"environment": k.environment, "account": k.account, "region": k.region},
                    "parents": [],
                    "tags": dict(k.tags),
                }
                for name, k in c.clusters.items()
            ),
            *(
                {
                    "uid": _uid("Principal", p.arn),
                    "attrs": {"kind": p.kind, "name": p.name},
                    "parents": [_uid("Group", g) for g in p.groups],
                }
                for p in c.principals
            ),
        ]

    # -- deciding ----------------------------------------------------------------------------

    def decide(self, question: AccessQuestion) -> Decision:
        """Deny (with the reason), auto-approve, or needs approvals: for one namespace."""
        return self._verdict(question, *self._evaluate(question))

    def offer(self, question: AccessQuestion) -> tuple[Decision, Decision | None]:
        """What the principal is offered for one (cluster, scope, namespace): the decision at
        ``question.duration`` (the catalog asks at the shortest allowed window) and, when a longer
        window is decided otherwise (auto-approved up to 15m, approvers up to 1h), the decision at
        the longest window a matching permit allows (never past the catalog's maximum). One Cedar
        evaluation, read by the same rules as :meth:`decide`."""
        allowed, matched = self._evaluate(question)
        first = self._verdict(question, allowed, matched)
        permits = [r for r in matched if r.effect == "permit" and r.max_duration]
        if first.outcome != "auto_approve" or not permits:
            return first, None
        longest = min(max(p.max_duration for p in permits if p.max_duration), self._catalog.settings.max_duration)
        if first.max_duration is None or longest <= first.max_duration:
            return first, None
        return first, self._best_permit(permits, longest)

    def _evaluate(self, question: AccessQuestion) -> tuple[bool, list[Rule]]:
        """Cedar's answer for ``question``: allowed or not, and the policies that matched."""
        entities = self._static_entities
        if not self._catalog.principal(question.principal):
            unknown = {
                "uid": _uid("Principal", question.principal),
                "attrs": {"kind": "unknown", "name": ""},
                "parents": [],
            }
            entities = [*entities, unknown]
        request = {
            "principal": f'{NS}::Principal::"{question.principal}"',
            "action": f'{NS}::Action::"request"',
            "resource": f'{NS}::Cluster::"{question.cluster}"',
            "context": {
                "scope": {"__entity": _uid("Scope", question.scope)},
                "namespace": question.namespace,
                "duration_seconds": int(question.duration.total_seconds()),
            },
        }
        result = cedarpy.is_authorized(request, self._text, entities, schema=SCHEMA)
        return result.decision == cedarpy.Decision.Allow, [self.rules[key] for key in result.diagnostics.reasons]

    def _verdict(self, question: AccessQuestion, allowed: bool, matched: list[Rule]) -> Decision:
        forbids = [r for r in matched if r.effect == "forbid"]
        if forbids:
            return Decision(outcome="deny", policy_ids=tuple(r.name for r in forbids), reason=forbids[0].reason)
        if not allowed or not matched:
            where = f"{question.cluster}/{question.namespace}" if question.namespace else question.cluster
            return Decision(
                outcome="deny", reason=f"no policy allows this principal to request '{question.scope}' on {where}"
            )
        return self._best_permit(matched, question.duration)

    @staticmethod
    def _best_permit(permits: list[Rule], duration: timedelta) -> Decision:
        longest = max(p.max_duration or timedelta(0) for p in permits)
        fitting = [p for p in permits if p.max_duration and p.max_duration >= duration]
        if not fitting:
            return Decision(
                outcome="too_long",
                policy_ids=tuple(p.name for p in permits),
                reason=f"duration exceeds the policy maximum of {format_duration(longest)}",
                max_duration=longest,
            )
        auto = [p for p in fitting if p.approval == "auto"]
        if auto:
            best = auto[0]
            return Decision(outcome="auto_approve", policy_ids=(best.name,), max_duration=best.max_duration)
        best = min(fitting, key=lambda p: p.approvals)
        return Decision(
            outcome="needs_approval",
            policy_ids=(best.name,),
            max_duration=best.max_duration,
            approvals_required=best.approvals,
            approvers=best.approvers,
            approval_timeout=best.approval_timeout or DEFAULT_APPROVAL_TIMEOUT,
        )

    def guard(self, question: KubeQuestion) -> Guard:
        """What guardrails say of one Kubernetes request a grant already covers: block (a forbid
        matched: every such one is named), hold (a manual permit matched: the one needing fewest
        approvals), or pass."""
        if self._guard_handles is None:  # the gateway asks on every request: parse policies, schema, entities once
            self._guard_handles = (
                cedarpy.PolicySet.from_str(self._guard_text),
                cedarpy.Entities.from_json_str(json.dumps(self._static_entities)),
                cedarpy.Schema.from_str(SCHEMA),
            )
        policies, entities, schema = self._guard_handles
        if not self._catalog.principal(question.principal):
            unknown = {"uid": _uid("Principal", question.principal), "attrs": {"kind": "unknown", "name": ""}}
            entities = entities.with_added_json_str(json.dumps([{**unknown, "parents": []}]))
        request = {
            "principal": f'{NS}::Principal::"{question.principal}"',
            "action": f'{NS}::Action::"kube"',
            "resource": f'{NS}::Cluster::"{question.cluster}"',
            "context": {
                "verb": question.verb,
                "api_group": question.api_group,
                "resource": question.resource,
                "subresource": question.subresource,
                "namespace": question.namespace,
                "name": question.name,
                "scope": {"__entity": _uid("Scope", question.scope)},
                "session": question.session,
            },
        }
        result = cedarpy.is_authorized(request, policies, entities, schema=schema)
        matched = [self._guard_rules[k] for k in result.diagnostics.reasons if k in self._guard_rules]
        if result.decision != cedarpy.Decision.Allow:
            forbids = [r for r in matched if r.effect == "forbid"]
            if not forbids:  # an evaluation error: fail closed
                errors = "; ".join(str(e) for e in result.diagnostics.errors) or "no reason"
                return Guard("block", (), f"guardrails could not be evaluated: {errors}")
            return Guard("block", tuple(r.name for r in forbids), forbids[0].reason)
        holds = [r for r in matched if r.effect == "permit" and r.action == "kube"]
        if not holds:
            return Guard("pass")
        best = min(holds, key=lambda r: r.approvals)
        return Guard(
            "hold",
            (best.name,),
            f"approval required by guardrail {best.name}",
            best.approvals,
            best.approvers,
            best.approval_timeout or DEFAULT_APPROVAL_TIMEOUT,
        )

    def decide_all(self, questions: list[AccessQuestion]) -> Decision:
        """One decision for a request over several namespaces: every namespace must agree."""
        decisions = [self.decide(q) for q in questions]
        for refusal in ("deny", "too_long"):
            refused = next((d for d in decisions if d.outcome == refusal), None)
            if refused:
                return refused
        manual = [d for d in decisions if d.outcome == "needs_approval"]
        if manual:
            return max(manual, key=lambda d: d.approvals_required)
        return min(decisions, key=lambda d: d.max_duration or timedelta(0))

    def scope_level(self, scope: str) -> Level:
        return self._catalog.scopes[scope].level
