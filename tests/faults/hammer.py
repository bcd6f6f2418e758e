"""Many saves to, or loads of, one path (test_faults.py: two writers and a reader).

Usage: hammer.py write SEED COUNT PATH  |  hammer.py read COUNT PATH
A writer saves its own network (seeded SEED) COUNT times. A reader loads the
path COUNT times and prints the first weight of each load (one line each), so
that the test can check every file read was one a writer wrote, whole. Each
prints "ready" and waits for a line on stdin, so that all start together.
"""

import os
import sys

import polymlp as pm

mode = sys.argv[1]
if mode == "write":
    seed, count, path = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    net = pm.Network(8, seed=seed).stack(pm.Dense(512, "relu")).stack(pm.Dense(256, "relu"))
    net.output(pm.Dense(4, "softmax"))
    net.fit([[0.0] * 8] * 4, [0, 1, 2, 3], epochs=1)  # an optimizer state to write too
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(count):
        net.save(path)
else:
    count, path = int(sys.argv[2]), sys.argv[3]
    print("ready", flush=True)
    sys.stdin.readline()
    seen = 0
    while seen < count:
        if not os.path.exists(path):
            continue
        net = pm.load(path)  # raises (and the test fails) on a partial or damaged file
        print(repr(float(net.get_weights()[0][0, 0])), flush=True)
        seen += 1
