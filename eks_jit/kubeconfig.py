"""The kubeconfig for an active grant, as a dict (the CLI's ``kubeconfig`` command and
:meth:`eks_jit.client.Client.kubeconfig` both build it here).

Its user runs ``aws eks get-token`` (entry mode: kubectl talks to the EKS API server) or
``eks-jit token`` (gateway mode: kubectl talks to eks-jit's gateway, and the machine needs only
eks-jit), so the holder needs only its own IAM credentials (the same ones the grant was made for)
and no ``eks:*`` permission: the endpoint and CA come with the active grant (``connection``).
Both commands make the same token (eks_jit/token.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LocalIdentity:
    """Local mode: the identity a client signs as and the state dir holding its keys, which
    ``eks-jit token --as NAME --state-dir DIR`` needs to sign a token as that identity."""

    name: str
    state_dir: str


class GrantNotActive(Exception):
    """The grant gives no cluster access (pending, or ended): there is nothing to configure."""

    def __init__(self, grant_id: str, status: str) -> None:
        why = (
            "the API answered no connection for its cluster (a gateway cluster with no gateway configured?)"
            if status == "active"
            else "no cluster access to configure"
        )
        super().__init__(f"grant {grant_id} is {status}: {why}")
        self.grant_id, self.status = grant_id, status


def token_exec(
    conn: dict[str, Any], profile: str | None, local: LocalIdentity | None, session: str | None = None
) -> dict[str, Any]:
    """The exec section of the kubeconfig's user: how kubectl gets a token for ``conn``'s cluster.
    ``session``: a session-bound grant's STS session, which local mode signs as (deployed, the
    caller's own credentials carry their session)."""
    if conn.get("access_mode") == "gateway":
        who = ["--as", local.name, "--state-dir", local.state_dir] if local else []
        if local and session:
            who += ["--session", session]
        command, args = (
            "eks-jit",
            [
                "token",
                "--cluster",
                conn["cluster"],
                "--region",
                conn["region"],
                *who,
                *(["--profile", profile] if profile and not local else []),
            ],
        )
    else:
        command, args = (
            "aws",
            [
                *(["--profile", profile] if profile else []),
                "--region",
                conn["region"],
                "eks",
                "get-token",
                "--cluster-name",
                conn["cluster"],
                "--output",
                "json",
            ],
        )
    return {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "args": args,
        **({"env": [{"name": "AWS_PROFILE", "value": profile}]} if profile and not local else {}),
        "interactiveMode": "Never",
    }


def kubeconfig(
    grant: dict[str, Any], profile: str | None = None, *, local: LocalIdentity | None = None
) -> dict[str, Any]:
    """A kubeconfig for an active ``grant`` (the API's grant view); :class:`GrantNotActive` otherwise.

    ``profile`` is the AWS profile the API call was signed with: the token must be made by the
    same principal, not by whatever the default credentials are when kubectl runs. It goes into
    the exec args (``--profile``: an explicit profile also overrides credentials in the
    environment) and ``env`` (``AWS_PROFILE``). The region is the cluster's (the STS endpoint the
    token is signed for). ``local``: local mode's identity, which ``eks-jit token`` signs as (gateway
    clusters; an entry cluster's ``aws eks get-token`` has no local mode)."""
    conn = grant.get("connection")
    if grant["status"] != "active" or not conn:
        raise GrantNotActive(grant["id"], grant["status"])
    name = f"eks-jit-{grant['id'][:8]}"
    context: dict[str, Any] = {"cluster": conn["cluster"], "user": name}
    if grant["namespaces"]:
        context["namespace"] = grant["namespaces"][0]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": conn["cluster"],
                "cluster": {
                    "server": conn["endpoint"],
                    # none: a publicly trusted certificate (a gateway behind a public CA), the system's roots
                    **({"certificate-authority-data": ca} if (ca := conn["certificate_authority"]) else {}),
                },
            }
        ],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": token_exec(conn, profile, local, grant.get("session"))}}],
    }
