"""pointlens.perturb"""
