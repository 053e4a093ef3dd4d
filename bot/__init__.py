"""Helix's Discord face. Kept free of imports so ``bot.ritual`` stays pure (no discord loaded)."""

__version__ = "0.1.0"
