"""pointlens.report"""
