"""pointlens.maximize"""
