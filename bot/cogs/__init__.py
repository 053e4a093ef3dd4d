"""One cog per file, each with ``async def setup(bot)``; HelixBot lists them in EXTENSIONS."""
