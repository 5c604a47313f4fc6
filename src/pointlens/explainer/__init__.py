"""pointlens.explainer"""
