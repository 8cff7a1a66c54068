"""Local emulations of AWS APIs that moto does not implement (yet)."""

from eks_jit.emulation.eks_access_entries import register

__all__ = ["register"]
