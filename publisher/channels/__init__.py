"""Channels: each publishes renditions of an article to one place (a mailbox, feed files, a social account)."""
