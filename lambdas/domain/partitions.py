"""AWS partitions by region, with no dependency (the token maker of the plain CLI install uses it too)."""

from __future__ import annotations

# Region prefixes of the partitions other than ``aws`` (botocore's endpoints data, ``regionRegex``).
PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)


def partition_of(region: str) -> str:
    """The partition a region is in: ``cn-north-1`` -> ``aws-cn``, ``us-gov-west-1`` -> ``aws-us-gov``."""
    return next((partition for prefix, partition in PARTITIONS if region.startswith(prefix)), "aws")
