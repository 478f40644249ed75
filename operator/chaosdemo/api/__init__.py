"""The ChaosDemo API: the models (one source of truth), the CRD made from them, conditions and phase,
errors, timestamps. Pure.
"""
