"""Clients of the outside systems: Kubernetes, PD, Docker and Claude. Created at the edge, injected."""
