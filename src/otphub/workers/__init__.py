"""Background loops that run inside every server process."""
