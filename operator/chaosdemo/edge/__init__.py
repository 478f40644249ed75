"""The edge: the `chaosdemo` command, the kopf handlers (the only module with kopf's decorators) and the wiring
that creates the real clients.
"""
