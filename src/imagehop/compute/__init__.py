"""Compute: a small Nova compatible API under ``<region URL>/compute/v2.1``."""
