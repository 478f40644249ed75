"""The local cluster: a real control plane from local binaries, worker nodes as Docker containers, the
SIMULATED tidb-operator objects, and LocalEnv that starts them together.
"""
