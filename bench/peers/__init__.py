"""Benchmark peers: the scale benchmark's points and queries in other engines (benchmark-only dependencies)."""
