"""Local mode: the whole control plane on one machine, AWS emulated by moto."""
