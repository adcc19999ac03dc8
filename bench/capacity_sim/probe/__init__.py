"""`python -m bench.capacity --probe`: the figures the benchmark does not give.

Loopback only: a Valkey from streetfeed.embedded.server_binary() on a Unix socket in a
temporary directory, loaded with the city's live posts through the real publish script,
and one `streetfeed web` process on a free local port. Both are stopped at the end.

- harness.py: the run (Valkey, the web process, the steps in order), one command's cost
- common.py: process CPU, commandstats, starting and stopping a process, a socket's frame
- city.py: the town's shops and live posts written through the product's own code
- store.py: the snapshot script's cost, memory per key, the remove script
- presence.py: presence reports published (gateway and Valkey CPU); a console's count of
  people watching (in-process, against the walk it replaced)
- gateway.py: one `streetfeed web` process: reads, presence heard, a console's reach reads,
  profiles (cached and computed), posts, socket opens and moves
"""

from bench.capacity_sim.probe.harness import probe

__all__ = ["probe"]
