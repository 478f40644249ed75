"""SIMULATIONS for the local tier: PD and its TiKV stores (pd_model, pd_sim) and an Anthropic-
compatible endpoint (fake_claude).
"""
