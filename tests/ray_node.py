"""A Ray worker node joining the cluster at ADDRESS on the loopback interface, as `ray start --address` starts one
(the same ``Node`` class), for the cluster tests: `ray start` itself refuses a second node on one machine while Ray
binds to 127.0.0.1 only (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0). Prints the raylet's pid, then runs until killed.

    python tests/ray_node.py 127.0.0.1:PORT CPUS
"""
import signal
import sys

import ray._private.node
import ray._private.parameter

address, cpus = sys.argv[1], int(sys.argv[2])
params = ray._private.parameter.RayParams(gcs_address=address, node_ip_address="127.0.0.1", num_cpus=cpus,
                                          num_gpus=0, object_store_memory=150 * 1024 * 1024)
node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
print(node.all_processes["raylet"][0].process.pid, flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a graceful stop: the node's processes end with it
signal.pause()
