"""Discrete schemes of the paper's PDEs: the heat equation (§3) and the one-layer CNN (§5)."""
