"""Tests of the social channels (issue 6)."""
