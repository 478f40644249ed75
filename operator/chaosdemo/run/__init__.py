"""The run of one demo: its lifecycle and the stages it calls (preflight, faults, observer, diagnosis, the
record), its state, crash points. Uses the clients it is given.
"""
