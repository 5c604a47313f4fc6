"""Shared helpers: validation, atomic IO and run folders, progress bars, seeding."""
