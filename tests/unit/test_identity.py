import pytest

from eks_jit.server.domain.identity import NotAPrincipal, normalise_principal, registry_key

KNOWN = {
    registry_key(arn): arn
    for arn in ("arn:aws:iam::111122223333:role/agents/oncall-agent", "arn:aws:iam::111122223333:user/alice")
}


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (
            "arn:aws:sts::111122223333:assumed-role/oncall-agent/incident-1",
            "arn:aws:iam::111122223333:role/agents/oncall-agent",
        ),
        ("arn:aws:sts::111122223333:assumed-role/other/s", "arn:aws:iam::111122223333:role/other"),
        ("arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/alice"),
        ("arn:aws:iam::111122223333:role/x/y", "arn:aws:iam::111122223333:role/x/y"),
        ("arn:aws-us-gov:sts::111122223333:assumed-role/r/s", "arn:aws-us-gov:iam::111122223333:role/r"),
    ],
)
def test_sessions_become_their_role(caller: str, expected: str) -> None:
    assert normalise_principal(caller, KNOWN) == expected


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::111122223333:federated-user/bob",
        "arn:aws:iam::111122223333:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS",
        "arn:aws:iam::111122223333:root",
        "not-an-arn",
        "",
    ],
)
def test_what_cannot_hold_an_access_entry_is_refused(caller: str) -> None:
    with pytest.raises(NotAPrincipal):
        normalise_principal(caller, KNOWN)


def test_registry_key_uses_the_partition_the_kind_and_the_last_path_segment() -> None:
    assert registry_key("arn:aws:iam::111122223333:role/agents/oncall-agent") == "aws/111122223333/role/oncall-agent"
    assert registry_key("arn:aws:iam::111122223333:user/alice") == "aws/111122223333/user/alice"
    assert registry_key("arn:aws-cn:iam::111122223333:role/oncall-agent") == "aws-cn/111122223333/role/oncall-agent"


def test_a_session_in_another_partition_is_not_the_registered_role() -> None:
    # found by review: arn:aws-cn matched the registry entry of an arn:aws role
    caller = "arn:aws-cn:sts::111122223333:assumed-role/oncall-agent/incident-1"
    assert normalise_principal(caller, KNOWN) == "arn:aws-cn:iam::111122223333:role/oncall-agent"


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::" + "".join(chr(0xFF10 + int(d)) for d in "111122223333") + ":assumed-role/oncall-agent/s",
        "arn:aws:iam::" + "".join(chr(0x0660 + int(d)) for d in "111122223333") + ":role/agents/oncall-agent",
        "arn:aws:sts::111122223333:assumed-role/oncall-ag\u00e9nt/s",  # a letter IAM names cannot hold
        "arn:aws:sts::111122223333:assumed-role/oncall-agent/sessi\u00f3n",
    ],
)
def test_non_ascii_digits_and_letters_are_not_an_arn(caller: str) -> None:
    with pytest.raises(NotAPrincipal):
        normalise_principal(caller, KNOWN)


def test_a_role_named_like_a_registered_user_is_not_that_user() -> None:
    # found by review: a role called "alice" must never act as the IAM user alice
    caller = "arn:aws:sts::111122223333:assumed-role/alice/evil"
    assert normalise_principal(caller, KNOWN) == "arn:aws:iam::111122223333:role/alice"


def test_the_default_username_is_what_eks_gives_an_entry_created_without_one() -> None:
    from eks_jit.server.domain.identity import default_username, entry_identity

    role = "arn:aws:iam::111122223333:role/agents/oncall-agent"
    assert default_username(role) == "arn:aws:sts::111122223333:assumed-role/oncall-agent/{{SessionName}}"
    assert default_username("arn:aws:iam::111122223333:user/alice") == "arn:aws:iam::111122223333:user/alice"
    assert entry_identity(role) == ("role", "111122223333", "oncall-agent")
