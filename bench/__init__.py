"""Streetfeed's fan-out benchmark: `python -m bench` (see bench/README.md)."""
