"""Ages in the emulated API server's Tables read as the real server prints them (apimachinery's HumanDuration)."""

from __future__ import annotations

import pytest

from eks_jit.emulation.kube_tables import human_duration, wants_table

MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (5 * MINUTE + 3, "5m3s"),
        (10 * MINUTE + 59, "10m"),
        (179 * MINUTE, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 10 * MINUTE, "3h10m"),
        (8 * HOUR + 10 * MINUTE, "8h"),
        (47 * HOUR, "47h"),
        (2 * DAY, "2d"),
        (3 * DAY + 4 * HOUR, "3d4h"),
        (12 * DAY, "12d"),
        (729 * DAY, "729d"),
        (2 * 365 * DAY + 30 * DAY, "2y30d"),
        (3 * 365 * DAY, "3y"),
        (9 * 365 * DAY, "9y"),
    ],
)
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


@pytest.mark.parametrize(
    ("accept", "table"),
    [
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io", True),
        ("application/json; as=Table; v=v1beta1; g=meta.k8s.io", True),
        ("application/json", False),
        ("application/json;as=Table;v=v2;g=meta.k8s.io", False),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", False),
        ("", False),
    ],
)
def test_which_clients_get_a_table(accept: str, table: bool) -> None:
    assert wants_table(accept) is table
