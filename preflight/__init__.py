"""The deploy preflight: every problem with this environment named, one line each, with its fix.

It checks the whole application (Python, packages, Helix's own modules, rclone, the settings of
the bot and the archive, the data folder, the remote) before anything starts, so it imports
only the standard library up front: the check cannot die of what it is checking.
``python -m preflight`` and ``python -m bot check`` both run it.
"""
