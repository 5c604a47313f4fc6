"""pointlens.metrics"""
