"""The capacity model behind `python -m bench.capacity` (bench/capacity.py: its docstring
says what it does, and it holds the PROBE figures and the `Model` assumptions).

One module a step, in the order the model goes:

- inputs.py: paths, the product's settings, the browser code's timings, PROBE as numbers
- measured.py: the benchmark's figures (bench/results/latest.json)
- town.py: a town's phones, screens and shops; the country's towns (Zipf)
- recipients.py: exact recipients of a post, checked against the real SubscriberIndex
- snapshots.py: live posts at the peak, what one snapshot costs
- peak.py: the evening peak hour, second by second
- presence.py: presence cells (per phone, per process, around a shop)
- townsim.py: one town simulated (all of the above)
- load.py: a town's load on N gateway processes, line by line (CPU, commands/s, memory)
- pools.py: gateway and API processes to a fixed point; presence listening
- packing.py: towns onto processes, regions (split if needed) onto shards
- sizing.py: the totals of a set of towns (`Sizing`)
- variants.py: the run: city, country, sensitivity variants (`Report`)
- render.py: the generated part of docs/capacity.md
- printout.py, plot.py: the tables on stdout, docs/capacity.png
- cli.py: the command line
- probe/: `--probe`, the figures the benchmark does not give
"""
