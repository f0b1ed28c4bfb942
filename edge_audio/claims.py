"""The prose audit: every sentence a chapter states about a difference, with the verdict of the test behind it.

A chapter makes such sentences through :class:`Claims` and glues them; :func:`unbacked_claims` (run by the book
runner and the tests on every executed chapter) finds a sentence asserting a difference that its test did not
resolve, or a displayed sentence asserting one that no resolved test backs. The statistics themselves are
:mod:`edge_audio.stats`.
"""
from __future__ import annotations

import re

from .stats import difference_phrase


#: Words that assert a difference; a sentence using one must be backed by a test that resolved it.
DIFFERENCE_WORDS = ("more accurate than", "less accurate than", "faster than", "slower than", "won", "dominates")


def asserts_difference(sentence: str) -> bool:
    """Whether ``sentence`` uses one of :data:`DIFFERENCE_WORDS` (as whole words, Markdown emphasis ignored)."""
    return any(re.search(rf"\b{re.escape(words)}\b", sentence) for words in DIFFERENCE_WORDS)


class Claims:
    """The sentences a chapter states about differences, each with the verdict of the test behind it.

    A chapter makes every such sentence through :meth:`state` and glues :meth:`as_json` as ``claims``; a test reads
    the executed chapters and fails when a sentence asserts a difference its own test calls unresolvable, or
    when a displayed sentence asserts a difference no claim backs.
    """

    def __init__(self):
        self.items: list[dict] = []

    def state(self, sentence: str, resolved: bool, p_value: float | None, test: str) -> str:
        """Register ``sentence`` (backed by ``test``, which resolved a difference or not) and return it."""
        self.items.append({"sentence": sentence, "resolved": bool(resolved), "p_value": p_value, "test": test})
        return sentence

    def accuracy(self, name_a: str, name_b: str, comparison: dict) -> str:
        """The :func:`difference_phrase` of a paired accuracy comparison, registered."""
        return self.state(difference_phrase(name_a, name_b, comparison), comparison["better"] is not None,
                          comparison["p_value"], comparison["test"])

    def as_json(self) -> str:
        import json

        return json.dumps(self.items)


def unbacked_claims(claims: list[dict], texts: list[str]) -> list[str]:
    """The problems with a chapter's statements: a claim that asserts a difference its test did not resolve (or
    calls a resolved one a tie), and a sentence among ``texts`` asserting a difference that no resolved claim
    states."""
    problems = []
    for claim in claims:
        asserts = asserts_difference(claim["sentence"])
        if asserts and not claim["resolved"]:
            problems.append(f"asserts an unresolved difference: {claim['sentence']}")
        if claim["resolved"] and not asserts and "tie within noise" in claim["sentence"]:
            problems.append(f"calls a resolved difference a tie: {claim['sentence']}")
    backed = [c["sentence"] for c in claims if c["resolved"]]
    for text in texts:
        for sentence in text.replace("\n", " ").split(". "):
            if asserts_difference(sentence) and not any(
                    claim.rstrip(".") in sentence or sentence.strip().rstrip(".") in claim for claim in backed):
                problems.append(f"states a difference no resolved test backs: {sentence.strip()}")
    return problems
