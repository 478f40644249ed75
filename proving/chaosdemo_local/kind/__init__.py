"""The kind tier, offline: a real kind cluster with images built here (images) and KindEnv that starts
and removes it (env).
"""
