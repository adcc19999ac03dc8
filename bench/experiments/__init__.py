"""Experiments run by the benchmark on demand (never edits of the product)."""
