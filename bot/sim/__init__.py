"""The real bot in a simulated Discord (SimCord): the world, the demo and the interactive play.

No token and no network: discord.py's own parsers, cache and command framework run against an
in-memory Discord, so what happens here is what would happen on Discord.
"""

from runtime.quiet_imports import quiet_import

# SimCord logs a warning about its own probe client on import; imported here first, without it.
quiet_import("simcord")
