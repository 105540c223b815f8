"""A sweep written in Python: the grid is computed. Sharded goodput against node count
(4 partitions per node) at an overload no single node can serve; the async pipeline is
off so the figure shows the deduction path alone.

    flashsim sweep experiments/sweeps/sharded_nodes.py && flashsim plot results/sharded_nodes/*/
"""

NODES = [2**k for k in range(5)]  # 1, 2, 4, 8, 16

SWEEP = {
    "sweep": {"name": "sharded_nodes", "seed": 5, "replications": 3, "strategies": ["sharded", "single_redis"]},
    "base": {
        "sale": {"stock": 100_000_000},
        "pipeline": {"enabled": False},
        "workload": {"kind": "poisson", "rate": 1_000_000, "duration": 0.05},
    },
    "points": [{"redis.nodes": n, "sharded.partitions": 4 * n} for n in NODES],
}
