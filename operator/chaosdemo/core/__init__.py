"""The pure decisions: snapshot, invariants, the detection and recovery step, timeline, targeting,
evidence, prompt, rules, grading, the inbox of watch events. No clients, no I/O.
"""
