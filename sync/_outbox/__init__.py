"""The durable outbox: the SQLite store of what waits to be archived and the worker that drains it.
Internal to ``sync``; other packages use ``sync.Outbox``, ``sync.OutboxItem`` and ``Archive``."""
