"""cj-batching's speed claims, each measured against a baseline in the same run.

Run `uv run python -m benchmarks --help`; see docs/performance.md for the figures.
"""
