"""Benchmarks: each prints JSON and compares against the plain baseline in the same run."""
