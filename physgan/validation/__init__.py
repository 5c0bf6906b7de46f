"""Validation: system-agnostic metrics comparing generated samples with Monte Carlo references."""
