"""The edge: the `chaosdemo` command, the kopf handlers (the only code that knows kopf) and the wiring
that creates the real clients.
"""
