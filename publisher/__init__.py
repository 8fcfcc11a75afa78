"""publisher: write an article once, publish it in English and Korean to email, feeds and social networks."""

from __future__ import annotations

__version__ = "0.1.0"
