"""Helix's Discord face: the bot, its cogs, its settings and the simulated guild it can run in."""

__version__ = "0.1.0"
