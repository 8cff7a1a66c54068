"""Builds the :class:`Deps` a handler uses, once per container, from the environment.

Tests and local mode hand in their own with :func:`use`.
"""

from __future__ import annotations

import os

from .adapters.audit_logs import CloudWatchAuditLog
from .adapters.aws import LazyClient
from .adapters.dynamodb import DynamoGrantStore
from .adapters.eks import ClusterConnections, EksAccessEntries, default_clients
from .adapters.idempotency import DynamoIdempotency
from .adapters.scheduler import EventBridgeRevocationScheduler
from .adapters.secrets import SecretsManagerSecrets
from .adapters.session_log import DynamoSessionLog
from .adapters.sns import SnsNotifier
from .adapters.stepfunctions import StepFunctionsWorkflow
from .config import Environment, load_catalog, load_policies, read_environment
from .logic.ports import Clock, Deps, SystemClock, Timing

_current: Deps | None = None


def build(
    env: Environment, *, with_policies: bool = True, clock: Clock | None = None, timing: Timing | None = None
) -> Deps:
    catalog = load_catalog(env.config_path)
    # Every adapter is built, but each client (its service model loaded) only on its first call:
    # a function pays for the services it uses (adapters/aws.py, LazyClient).
    secrets = SecretsManagerSecrets(LazyClient("secretsmanager", env.region, env.endpoint_url))
    notifier = (
        SnsNotifier(
            LazyClient("sns", env.region, env.endpoint_url),
            approvals_topic=env.approvals_topic_arn,
            outcomes_topic=env.outcomes_topic_arn,
        )
        if env.approvals_topic_arn and env.outcomes_topic_arn
        else None
    )
    chat = None
    if catalog.slack.enabled and env.slack_secret:
        from .adapters.slack import SlackChat  # slack-sdk loads only where Slack is on

        chat = SlackChat(secrets, env.slack_secret, catalog.slack.channel, env.slack_api_url)
    # Resuming needs only the task token; starting needs the state machine (api only).
    workflow = StepFunctionsWorkflow(LazyClient("stepfunctions", env.region, env.endpoint_url), env.state_machine_arn)
    timing = timing or Timing()
    ddb = LazyClient("dynamodb", env.region, env.endpoint_url)
    return Deps(
        catalog=catalog,
        policies=load_policies(env.config_path, catalog) if with_policies else None,
        store=DynamoGrantStore(ddb, env.table_name),
        eks=EksAccessEntries(catalog.clusters, default_clients(env.endpoint_url)),
        scheduler=EventBridgeRevocationScheduler(
            LazyClient("scheduler", env.region, env.endpoint_url),
            group=env.schedule_group,
            target_arn=env.revoke_target_arn,
            role_arn=env.scheduler_role_arn,
            dlq_arn=env.revoke_dlq_arn,
        ),
        clock=clock or SystemClock(),
        timing=timing,
        workflow=workflow,
        notifier=notifier,
        chat=chat,
        secrets=secrets,
        link_key_secret=env.link_key_secret,
        slack_secret=env.slack_secret,
        public_url=env.public_url,
        gateway_role=env.gateway_role_arn,
        connections=ClusterConnections(
            catalog.clusters,
            default_clients(env.endpoint_url, "eks"),
            gateway_endpoint=env.gateway_endpoint,
            gateway_ca=env.gateway_ca,
        ),
        audit_log=CloudWatchAuditLog(
            catalog.clusters, default_clients(env.endpoint_url, "logs"), default_clients(env.endpoint_url, "eks")
        ),
        # the same table: records under their own key prefix (IDEMPOTENCY#), reaped by its TTL
        idempotency=DynamoIdempotency(ddb, env.table_name, window=timing.idempotency_window),
        # the same table again: COMMAND# partitions, written by the gateway, read by the api function
        session_log=DynamoSessionLog(ddb, env.table_name),
    )


def deps(*, policies: bool = True) -> Deps:
    """The container's dependencies; ``policies=False`` for functions that never decide a
    request, so they load neither the Cedar engine nor the policy file."""
    global _current
    if _current is None or (policies and _current.policies is None):
        _current = build(read_environment(dict(os.environ)), with_policies=policies)
    return _current


def use(custom: Deps | None) -> None:
    """Install ``custom`` as every handler's dependencies (None: rebuild from the environment)."""
    global _current
    _current = custom
