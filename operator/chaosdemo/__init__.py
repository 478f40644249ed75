"""ChaosDemo: a kopf operator that kills a TiKV store, detects, diagnoses and measures recovery."""

__version__ = "0.1.0"
