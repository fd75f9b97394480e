"""Tools for development, tests and benchmarks (not used by the running portal)."""
