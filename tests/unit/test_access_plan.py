"""Desired access is the union of active grants; the plan is the difference to the actual entry."""

from eks_jit.server.domain.access import Access, Entry, PolicyScope, access_of, plan, union_of
from eks_jit.server.domain.catalog import Level, PolicyRule, Scope

VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
view = Scope(description="v", access_policies=(VIEW,))
edit = Scope(description="e", access_policies=(EDIT,))
cluster_view = Scope(description="cv", level=Level.CLUSTER, access_policies=(VIEW,))
restart = Scope(description="r", rbac=(PolicyRule(apiGroups=("apps",), resources=("deployments",), verbs=("patch",)),))


def test_a_namespaced_rbac_scope_adds_one_group_per_namespace() -> None:
    assert access_of("rollout-restart", restart, ["payments"]) == Access(
        frozenset({"eks-jit:rollout-restart:payments"})
    )


def test_union_merges_namespaces_of_the_same_policy_and_cluster_wins() -> None:
    total = union_of([access_of("view", view, ["payments"]), access_of("view", view, ["orders"])])
    assert total.policies == {VIEW: PolicyScope.of({"payments", "orders"})}
    total = union_of([total, access_of("cluster-view", cluster_view, [])])
    assert total.policies == {VIEW: PolicyScope.cluster()}


def test_nothing_desired_and_nothing_there_is_a_noop() -> None:
    assert plan(Access(), None).is_noop


def test_create_when_absent() -> None:
    desired = union_of([access_of("rollout-restart", restart, ["payments"]), access_of("view", view, ["payments"])])
    p = plan(desired, None)
    assert p.create and p.groups == {"eks-jit:rollout-restart:payments"}
    assert p.associate == {VIEW: PolicyScope.of({"payments"})}


def test_delete_when_nothing_is_justified() -> None:
    assert plan(Access(), Entry(True, access_of("view", view, ["payments"]))).delete


def test_only_the_difference_of_policies_is_applied() -> None:
    actual = Entry(True, union_of([access_of("view", view, ["payments"]), access_of("edit", edit, ["payments"])]))
    desired = union_of([access_of("view", view, ["payments", "orders"])])
    p = plan(desired, actual)
    assert not p.create and not p.delete and not p.recreate
    assert p.associate == {VIEW: PolicyScope.of({"payments", "orders"})}
    assert p.disassociate == {EDIT}


def test_changed_groups_recreate_the_entry_with_every_policy() -> None:
    """Groups are only set where IAM checks them (CreateAccessEntry), never by UpdateAccessEntry."""
    actual = Entry(True, union_of([access_of("view", view, ["payments"])]))
    desired = union_of([access_of("view", view, ["payments"]), access_of("rollout-restart", restart, ["orders"])])
    p = plan(desired, actual)
    assert p.recreate and not p.create and not p.delete
    assert p.groups == {"eks-jit:rollout-restart:orders"}
    assert p.associate == {VIEW: PolicyScope.of({"payments"})}  # the new entry has none yet


def test_a_username_someone_changed_recreates_the_entry() -> None:
    desired = union_of([access_of("view", view, ["payments"])])
    p = plan(desired, Entry(True, desired, username_is_default=False))
    assert p.recreate and p.associate == dict(desired.policies)


def test_applying_the_plan_reaches_the_desired_state_so_a_second_plan_is_empty() -> None:
    desired = union_of([access_of("view", view, ["payments"])])
    assert plan(desired, Entry(True, desired)).is_noop
