"""Tasks: records, lifecycle and the worker that runs export and import."""
