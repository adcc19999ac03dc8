"""python -m bench [--quick] [--n 1000,5000,10000] [--reps 3] ... (see bench/README.md)."""

import sys

# --product REF: benchmark an exported commit instead of the working tree. Decided before
# anything imports the product's modules, so that the harness uses the same code.
if "--product" in sys.argv:
    from bench import procs

    procs.use_product(sys.argv[sys.argv.index("--product") + 1])

from bench.run import main

sys.exit(main())
