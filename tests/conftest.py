import os

# Tests pin one thread: weights are bitwise reproducible only at a fixed thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
