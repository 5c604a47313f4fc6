"""pointlens.recon"""
