"""Workflows: what runs MD and then analyses it (analyze a run, study, compare,
dynamic equivariance, audit)."""
