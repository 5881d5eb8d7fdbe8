"""Chinese tokens for BM25: jieba's search-mode cut (bm25s's own tokeniser splits on spaces only)."""

from __future__ import annotations

import logging
import re

_KEEP = re.compile(r"\w", re.UNICODE)
_jieba = None


def _cutter():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def tokenize(text: str) -> list[str]:
    """Lower-cased jieba search-mode tokens without punctuation or spaces."""
    return [t for t in (w.strip().lower() for w in _cutter().lcut_for_search(text)) if t and _KEEP.search(t)]
