"""Object storage: a Swift / Cloud Files compatible API under ``<region URL>/v1``."""
