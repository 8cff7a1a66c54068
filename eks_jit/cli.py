"""The ``eks-jit`` command line. Exit codes: 0 done, 1 refused or failed (one-line reason on
stderr), 2 usage error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIG = Path("config/example/eks-jit.yaml")


def _rbac_render(args: argparse.Namespace) -> int:
    from eks_jit.rbac import render
    from lambdas.config import ConfigError, load_config

    try:
        catalog, _ = load_config(args.config)
    except ConfigError as exc:
        print(f"eks-jit: {exc}", file=sys.stderr)
        return 1
    for path in render(catalog, args.out, args.kubernetes_version):
        print(path)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="eks-jit", description="Just-in-time access to Amazon EKS.")
    commands = top.add_subparsers(dest="command", required=True)
    rbac = commands.add_parser("rbac", help="in-cluster RBAC for the scope catalog").add_subparsers(
        dest="rbac_command", required=True
    )
    render = rbac.add_parser("render", help="write validated Role/RoleBinding YAML per cluster")
    render.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration file (default: %(default)s)")
    render.add_argument("--out", type=Path, default=Path("deploy/rbac"), help="output folder (default: %(default)s)")
    render.add_argument("--kubernetes-version", default="1.33.0", help="schema to validate against")
    render.set_defaults(run=_rbac_render)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
