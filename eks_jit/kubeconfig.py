"""The kubeconfig for an active grant, as a dict (the CLI's ``kubeconfig`` command and
:meth:`eks_jit.client.Client.kubeconfig` both build it here).

Its user runs ``aws eks get-token``, so the holder needs only its own IAM credentials (the same
ones the grant was made for) and no ``eks:*`` permission: the API endpoint and CA come with the
active grant (``connection``)."""

from __future__ import annotations

from typing import Any


class GrantNotActive(Exception):
    """The grant gives no cluster access (pending, or ended): there is nothing to configure."""

    def __init__(self, grant_id: str, status: str) -> None:
        super().__init__(f"grant {grant_id} is {status}: no cluster access to configure")
        self.grant_id, self.status = grant_id, status


def kubeconfig(grant: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """A kubeconfig for an active ``grant`` (the API's grant view); :class:`GrantNotActive` otherwise.

    ``profile`` is the AWS profile the API call was signed with: the token must be made by the
    same principal, not by whatever the default credentials are when kubectl runs. It goes into
    the exec args (``--profile``: an explicit profile also overrides credentials in the
    environment) and ``env`` (``AWS_PROFILE``). The region is the cluster's (the STS endpoint the
    token is signed for)."""
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
                "cluster": {"server": conn["endpoint"], "certificate-authority-data": conn["certificate_authority"]},
            }
        ],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": [
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
                        **({"env": [{"name": "AWS_PROFILE", "value": profile}]} if profile else {}),
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }
