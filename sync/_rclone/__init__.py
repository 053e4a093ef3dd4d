"""The rclone machinery: finding the binary, the supervised ``rclone rcd`` child, its rc API client
and the translation of rclone's error texts into Helix's typed errors. Internal to ``sync``."""
