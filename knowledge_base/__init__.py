"""Specialty knowledge base (专科专病知识库) and its Chinese hybrid search."""
