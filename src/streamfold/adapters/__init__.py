"""IO adapters: thin loops around the sans-IO ``StreamParser``."""
