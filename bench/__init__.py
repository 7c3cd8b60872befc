"""Benchmarks: `uv run python -m bench all` (or one part) on PostgreSQL + Redis; see BENCHMARKS.md."""
