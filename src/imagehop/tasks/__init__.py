"""Tasks: records and lifecycle, the worker that runs them, export to VHD and import from objects."""
