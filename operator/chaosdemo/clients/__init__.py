"""Clients of the outside systems: Kubernetes, PD, Docker, Claude, and the Prometheus metrics. Created
at the edge, injected.
"""
