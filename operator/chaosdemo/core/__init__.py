"""The pure decisions: snapshot, invariants, the detection and recovery step, timeline, targeting,
evidence, prompt, rules, grading, the journal of watch events. No clients, no I/O.
"""
