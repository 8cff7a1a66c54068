"""Alarms on what must never go unnoticed, and one dashboard.

- revocation failures: the revoke function errored, or a message sits in a dead-letter queue
  (Scheduler could not invoke it, or it failed after its retries);
- grants past expiry still active: the sweeper had to expire one (``OverdueGrantsExpired``),
  which means the precise path missed;
- the backstop itself: sweeper errors (``SweeperErrors``, function errors) or no sweeper run;
- API 5xx;
- a failed approval workflow (``ExecutionsFailed``: activation failed or no approver could be told).
  Timed-out approvals are not alarmed: nobody deciding in time is a normal outcome, the workflow
  catches ``States.Timeout``, expires the request and succeeds.
Every alarm notifies the alarms topic (never the outcomes topic other tools read).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from eks_jit.server.observability import SERVICE
from infra.functions import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)


def app_metric(name: str, statistic: str = "Sum") -> cw.Metric:
    """A metric the functions publish with powertools (namespace EksJit, dimension service)."""
    return cw.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE},
        statistic=statistic,
        period=PERIOD,
    )


@dataclass(frozen=True)
class Watched:
    api: lambda_.IFunction
    revoke: lambda_.IFunction
    sweeper: lambda_.IFunction
    notify: lambda_.IFunction
    workflow: lambda_.IFunction
    approvals: sfn.IStateMachine
    stage: apigw.Stage
    schedule_dlq: sqs.IQueue
    failures: sqs.IQueue
    sweeper_rate: Duration
    gateway: lambda_.IFunction | None = None  # only with a gateway cluster


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, watched: Watched, topic: sns.ITopic):
        super().__init__(scope, construct_id)
        w = watched
        self.alarms: list[cw.Alarm] = []
        at_least_one = {
            "threshold": 1,
            "evaluation_periods": 1,
            "comparison_operator": cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            "treat_missing_data": cw.TreatMissingData.NOT_BREACHING,
        }

        def alarm(construct_id: str, metric: cw.IMetric, description: str, **overrides: object) -> cw.Alarm:
            made = cw.Alarm(
                self,
                construct_id,
                alarm_name=f"{prefix}-{construct_id}",
                alarm_description=description,
                metric=metric,
                **{**at_least_one, **overrides},  # type: ignore[arg-type]
            )
            made.add_alarm_action(actions.SnsAction(topic))
            self.alarms.append(made)
            return made

        alarm(
            "RevokeErrors",
            w.revoke.metric_errors(period=PERIOD, statistic="Sum"),
            "The revoke function failed: access may outlive its grant until the sweeper catches it.",
        )
        alarm(
            "RevocationDeadLetters",
            w.schedule_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            "Scheduler could not invoke the revoke function for a grant (see the message for the grant id).",
        )
        alarm(
            "AsyncFailures",
            w.failures.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            "A revoke or sweeper invocation failed after its retries.",
        )
        alarm(
            "OverdueGrants",
            app_metric("OverdueGrantsExpired"),
            "The sweeper found active grants past their expiry: the scheduled revocation missed.",
        )
        alarm(
            "ActivationRefused",
            app_metric("ActivationRefused"),
            "An approved grant was not activated: policy and the recorded votes, derived again, do not "
            "justify it (a policy change, or a grant item written outside eks-jit). See the grant's events.",
        )
        alarm(
            "SweeperErrors",
            app_metric("SweeperErrors"),
            "The sweeper could not expire, activate or reconcile something (details in its log).",
        )
        alarm(
            "SweeperFailed",
            w.sweeper.metric_errors(period=PERIOD, statistic="Sum"),
            "The sweeper function itself failed.",
        )
        silence = Duration.minutes(max(10, w.sweeper_rate.to_minutes() * 3))
        alarm(
            "SweeperNotRunning",
            w.sweeper.metric_invocations(period=silence, statistic="Sum"),
            "The sweeper, the backstop of every revocation, has not run.",
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        alarm(
            "Api5xx",
            w.stage.metric_server_error(period=PERIOD, statistic="Sum"),
            "The API answered 5xx (bad input is always 4xx: a 5xx is a failure of eks-jit or AWS).",
        )
        alarm(
            "ApprovalWorkflowFailed",
            w.approvals.metric_failed(period=PERIOD, statistic="Sum"),
            "An approval workflow failed: its grant ended failed (see the grant's events and the workflow log).",
        )

        if w.gateway is not None:
            alarm(
                "GatewayErrors",
                w.gateway.metric_errors(period=PERIOD, statistic="Sum"),
                "The data-path gateway's function failed or timed out (a stream it did not end before the "
                "invocation limit, or a crash): kubectl saw a broken connection. Its refusals are answers, not errors.",
            )
            alarm(
                "GatewayThrottles",
                w.gateway.metric_throttles(period=PERIOD, statistic="Sum"),
                "Requests to the data-path gateway were throttled (reserved concurrency or the account's limit): "
                "agents' kubectl got 429s.",
            )

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-overview")
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=4),
            cw.GraphWidget(
                title="Grants",
                left=[app_metric("GrantRequested"), app_metric("GrantRevoked")],
                width=8,
            ),
            cw.GraphWidget(
                title="Revocation lag (s, after expires_at)",
                left=[app_metric("RevocationLagSeconds", "Maximum"), app_metric("RevocationLagSeconds", "p99")],
                width=8,
            ),
            cw.GraphWidget(
                title="Sweeper",
                left=[app_metric("OverdueGrantsExpired"), app_metric("AccessDriftFixed"), app_metric("SweeperErrors")],
                width=8,
            ),
            cw.GraphWidget(
                title="API",
                left=[w.stage.metric_count(period=PERIOD), w.stage.metric_client_error(period=PERIOD)],
                right=[w.stage.metric_server_error(period=PERIOD)],
                width=8,
            ),
            cw.GraphWidget(
                title="Function errors",
                left=[
                    f.metric_errors(period=PERIOD, statistic="Sum")
                    for f in (w.api, w.revoke, w.sweeper, w.notify, w.workflow, *([w.gateway] if w.gateway else []))
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Approval workflows",
                left=[
                    w.approvals.metric_started(period=PERIOD, statistic="Sum"),
                    w.approvals.metric_succeeded(period=PERIOD, statistic="Sum"),
                    w.approvals.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
                right=[w.approvals.metric_failed(period=PERIOD, statistic="Sum")],
                width=8,
            ),
            cw.GraphWidget(
                title="Dead letters",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
                    for q in (w.schedule_dlq, w.failures)
                ],
                width=8,
            ),
        )
