"""Image service: a Glance v2 compatible API under ``<region URL>/image``."""
