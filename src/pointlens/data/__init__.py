"""pointlens.data"""
