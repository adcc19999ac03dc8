"""How a process runs: its settings (read once from the environment), logs, metrics and
the connection guard every socket passes. May import `rules` and `schemas`.
"""
