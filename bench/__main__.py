"""python -m bench [--quick] [--n 1000,5000,10000] [--reps 3] ... (see bench/README.md)."""

import sys
import tempfile
from pathlib import Path

# --product REF: benchmark an exported commit instead of the working tree. Decided before
# anything imports the product's modules, so that the harness uses the same code.
if "--product" in sys.argv:
    from bench import procs

    ref = sys.argv[sys.argv.index("--product") + 1]
    procs.PRODUCT_DIR = procs.export_product(
        ref, Path(tempfile.mkdtemp(prefix="streetfeed-product-")))
    sys.path.insert(0, str(procs.PRODUCT_DIR))

from bench.run import main

sys.exit(main())
