"""Capture: archiving what a community posts on Discord (messages, attachments, whole channels).

Its public face. It imports sync's face, the catalogue and runtime, never discord nor the bot:
the bot hands it a ``Source`` (capture/source.py) built on discord.py.
"""

from capture.engine import Capture
from capture.ingest import Tally
from capture.settings import CaptureSettings
from capture.source import AttachmentRef, ChannelInfo, MessageRecord, Source, SourceError

__all__ = ["AttachmentRef", "Capture", "CaptureSettings", "ChannelInfo", "MessageRecord", "Source", "SourceError",
           "Tally"]
