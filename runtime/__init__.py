"""What every Helix process needs, whatever it runs: the redacting log pipeline, reading the
environment, units for people, the health endpoints and the exit codes.

It knows nothing of Discord or rclone, so the bot, the archive layer, the preflight and the
benchmark can all stand on it.
"""
