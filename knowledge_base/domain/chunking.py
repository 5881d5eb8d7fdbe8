"""Chunking that respects Chinese sentences and question-and-answer boundaries (切分).

A passage never ends in the middle of a sentence unless that one sentence is
longer than the limit; a Q&A pair is one passage (a long answer is split, each
part keeping its question); section headings travel with their passages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 300
_SENTENCE_END = re.compile(r"([。！？!?；;…]+[”’」』）)\"']*|\n+)")


@dataclass(frozen=True, slots=True)
class Section:
    """A piece of a parsed document: prose under a heading, or one Q&A pair."""

    text: str
    heading: str = ""
    question: str = ""  # set for Q&A pairs
    alternatives: tuple[str, ...] = ()  # other phrasings of the question


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int
    text: str  # the passage shown to the agent
    heading: str = ""
    question: str = ""
    alternatives: tuple[str, ...] = ()

    @property
    def search_text(self) -> str:
        """What is indexed: heading, question and its other phrasings give the passage its context."""
        parts = [p for p in (self.heading, self.question, *self.alternatives, self.text) if p]
        return "\n".join(dict.fromkeys(parts))


def split_sentences(text: str) -> list[str]:
    """Sentences with their end punctuation (。！？；… and closing quotes), whitespace trimmed."""
    pieces = _SENTENCE_END.split(text)
    out: list[str] = []
    for i in range(0, len(pieces), 2):
        sentence = pieces[i] + (pieces[i + 1].strip() if i + 1 < len(pieces) else "")
        sentence = sentence.strip()
        if sentence:
            out.append(sentence)
    return out


def pack_sentences(sentences: list[str], max_chars: int = MAX_CHARS) -> list[str]:
    """Greedy packing into passages of at most ``max_chars``; only an over-long sentence is cut."""
    passages: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > max_chars:
            if current:
                passages.append(current)
                current = ""
            passages.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        joiner = "" if not current or _cjk_end(current) else " "
        if current and len(current) + len(joiner) + len(sentence) > max_chars:
            passages.append(current)
            current = sentence
        else:
            current = current + joiner + sentence if current else sentence
    if current:
        passages.append(current)
    return passages


def _cjk_end(text: str) -> bool:
    return bool(text) and (ord(text[-1]) > 0x2E80)


def chunk_sections(sections: list[Section], max_chars: int = MAX_CHARS) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in sections:
        if section.question:
            answer_room = max(max_chars - len(section.question), max_chars // 2)
            for part in pack_sentences(split_sentences(section.text), answer_room) or [""]:
                chunks.append(Chunk(len(chunks), part, section.heading, section.question, section.alternatives))
        else:
            for part in pack_sentences(split_sentences(section.text), max_chars):
                chunks.append(Chunk(len(chunks), part, section.heading))
    return chunks
