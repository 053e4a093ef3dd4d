"""Pure renderers: a specification in, bytes out. No Discord, no archive, no I/O.

They run in a worker thread and are tested alone, so a picture or a transcript can be checked
without a bot or a remote: the ritual image, a channel's HTML transcript, the index of a restored
folder, and Discord's Markdown as HTML (which the transcript uses).
"""
