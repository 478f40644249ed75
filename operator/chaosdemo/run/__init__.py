"""The run that acts: the lifecycle of a demo and the stages it calls (preflight, faults, observer,
diagnosis, status record), leadership, settings. Uses the clients it is given.
"""
