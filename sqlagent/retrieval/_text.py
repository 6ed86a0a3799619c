"""Words out of identifiers and questions: shared by the hashing embedder and lexical ranking.

Identifiers are split the way people read them (``Singer_ID`` -> ``singer id``, ``FlightNo`` ->
``flight no``), lower-cased and reduced by a tiny plural stemmer, so a question's "singers"
meets a column named ``singer``. Deterministic and dependency-free.
"""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "identifier_words", "stem", "terms"]

# camelCase / PascalCase / acronym boundaries, digits apart from letters.
_PIECES = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_STOPWORDS_TEXT = """
    a about above after all also an and any are as at be been before being below between both
    but by can could did do does doing done during each either every for from give had has have
    having he her here hers him his how i if in into is it its itself just list many me more most
    much my no nor not of off on once only or other our out over own please same she should show
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where whether which while who whom whose why will with
    would you your yours find return tell display get number count name names total per sorted
    order ordered descending ascending different distinct
"""

#: Question words that carry no schema meaning.
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def identifier_words(text: str) -> list[str]:
    """Lower-case words of ``text``, splitting snake_case, camelCase and digits."""
    return [piece.lower() for piece in _PIECES.findall(text)]


def stem(word: str) -> str:
    """A minimal English plural stemmer: enough to match "singers" with "singer"."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text``, stopwords removed, in order."""
    return [stem(w) for w in identifier_words(text) if w not in STOPWORDS]
