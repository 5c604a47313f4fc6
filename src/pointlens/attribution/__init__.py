"""pointlens.attribution"""
