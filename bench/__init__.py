"""Benchmarks against the anchors of PERFORMANCE.md; `make bench` runs them and writes docs/benchmarks.md."""
