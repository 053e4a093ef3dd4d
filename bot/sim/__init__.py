"""The real bot in a simulated Discord (SimCord): the world, the demo and the interactive play.

No token and no network: discord.py's own parsers, cache and command framework run against an
in-memory Discord, so what happens here is what would happen on Discord.
"""
