"""The servers the benchmark compares Streetfeed with (each run as its own process)."""
