"""The ports of ``lambdas/logic/ports.py`` in memory, for the long lifecycle soak (``make soak``).

Test code only: it lives under ``tests/`` so neither the Lambda bundle (``lambdas/``) nor the
wheel (``eks_jit/``) can ship it. ``tests/memory/test_contract.py`` runs the same tests against
these and against the moto-backed adapters, so the two cannot drift.
"""
