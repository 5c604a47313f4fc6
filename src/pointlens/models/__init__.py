"""pointlens.models"""
