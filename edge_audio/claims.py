"""The prose audit: every sentence a chapter states about a difference, with the verdict behind it.

A chapter makes such sentences through :class:`Claims` and glues them; :func:`unbacked_claims` (run by the book
runner and the tests on every executed chapter) finds a sentence asserting a difference that its test did not
resolve, a sentence claiming equality within the margin ("within 1 point of", "no worse than", "nothing is given
up", "dominates") that no verdict shows, and the retired phrase "tie within noise" (not resolved is not equal).
The statistics themselves are :mod:`edge_audio.stats`.
"""
from __future__ import annotations

import re

from .stats import difference_phrase


#: Words that assert a difference; a sentence using one must be backed by a test that resolved it.
DIFFERENCE_WORDS = ("more accurate than", "less accurate than", "faster than", "slower than", "won")
#: Words that claim equality within the margin (or no loss); a sentence using one must be backed by a verdict that
#: shows it (within the margin, or no worse).
MARGIN_WORDS = ("within the margin", "no worse than", "nothing is given up", "dominates", "dominated")
_WITHIN = re.compile(r"\bwithin [0-9.]+ points?\b")
#: What no sentence says any more: a difference that was not resolved is not equality.
RETIRED = "tie within noise"


def _uses(sentence: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", sentence) for w in words)


def asserts_difference(sentence: str) -> bool:
    """Whether ``sentence`` uses one of :data:`DIFFERENCE_WORDS` (as whole words, Markdown emphasis ignored)."""
    return _uses(sentence, DIFFERENCE_WORDS)


def claims_margin(sentence: str) -> bool:
    """Whether ``sentence`` claims equality within a margin or no loss (:data:`MARGIN_WORDS`, "within N points")."""
    return _uses(sentence, MARGIN_WORDS) or bool(_WITHIN.search(sentence))


class Claims:
    """The sentences a chapter states about differences, each with the verdict of the test behind it.

    A chapter makes every such sentence through :meth:`state` and glues :meth:`as_json` as ``claims``; a test reads
    the executed chapters and fails when a sentence asserts a difference its own test calls unresolvable, or
    when a displayed sentence asserts a difference no claim backs.
    """

    def __init__(self):
        self.items: list[dict] = []

    def state(self, sentence: str, resolved: bool, p_value: float | None, test: str, shown_within: bool = False) -> str:
        """Register ``sentence`` (backed by ``test``, which resolved a difference or not, and showed equality
        within the margin or no loss, or not) and return it."""
        self.items.append({"sentence": sentence, "resolved": bool(resolved), "within": bool(shown_within),
                           "p_value": p_value, "test": test})
        return sentence

    def accuracy(self, name_a: str, name_b: str, comparison: dict) -> str:
        """The :func:`difference_phrase` of a paired accuracy comparison, registered with its verdict."""
        verdict = comparison["verdict"]
        return self.state(difference_phrase(name_a, name_b, comparison), verdict in ("better", "worse"),
                          comparison["p_value"], comparison["test"],
                          shown_within=verdict in ("within the margin", "no worse", "no better"))

    def as_json(self) -> str:
        import json

        return json.dumps(self.items)


def _sentences(text: str) -> list[str]:
    return [sentence.strip().rstrip(".") for sentence in text.replace("\n", " ").split(". ")]


def _stated_by(sentence: str, backed: list[str]) -> bool:
    """Whether a backed claim states ``sentence`` in the same words (one holds the other)."""
    return any(claim.rstrip(".") in sentence or sentence in claim for claim in backed)


def _retired(sentence: str) -> list[str]:
    return [f"calls an unresolved difference a tie (say what the interval shows): {sentence}"] \
        if RETIRED in sentence else []


def unbacked_claims(claims: list[dict], texts: list[str]) -> list[str]:
    """The problems with a chapter's statements: a claim asserting a difference its test did not resolve, a claim
    of equality within the margin no verdict showed, the retired "tie within noise", and a sentence among
    ``texts`` asserting a difference (or equality within the margin) that no backed claim states."""
    problems = []
    for claim in claims:
        sentence = claim["sentence"]
        if asserts_difference(sentence) and not claim["resolved"]:
            problems.append(f"asserts an unresolved difference: {sentence}")
        if claims_margin(sentence) and not claim.get("within", False) and not claim["resolved"]:
            problems.append(f"claims equality within the margin that no verdict shows: {sentence}")
    resolved = [c["sentence"] for c in claims if c["resolved"]]
    within = [c["sentence"] for c in claims if c.get("within", False) or c["resolved"]]
    for text in texts:
        for sentence in _sentences(text):
            problems += _retired(sentence)
            for asserts, backed, what in ((asserts_difference, resolved, "a difference no resolved test backs"),
                                          (claims_margin, within, "equality within the margin no verdict shows")):
                if asserts(sentence) and not _stated_by(sentence, backed):
                    problems.append(f"states {what}: {sentence}")
    return problems


#: What a page that quotes the chapters (the introduction) may say only where a chapter's verdict shows it.
NO_LOSS = "nothing is given up"


def unbacked_page_claims(claims: list[dict], text: str) -> list[str]:
    """The sentences of a rendered page that call a pick free ("nothing is given up") or two models equal ("within
    1 point of") with no chapter claim showing it in the same words, or that use the retired "tie within noise".
    (Pages also state the rules in general terms, "shown no worse than ... by more than the margin"; those name no
    result and are not checked.)"""
    backed = [c["sentence"] for c in claims if c.get("within", False) or c["resolved"]]
    problems = []
    for sentence in _sentences(text):
        problems += _retired(sentence)
        if (NO_LOSS in sentence or _WITHIN.search(sentence)) and not _stated_by(sentence, backed):
            problems.append(f"claims what no chapter's verdict shows: {sentence}")
    return problems
