"""Follow-up resolution: turn "and for 15 years?" into a self-contained question.

Rules, in order (cheap, deterministic, no model):
0. A message that picks one of the choices the previous answer offered (its label, as
   a click sends it, or "yes" when only one was offered) is the question that choice
   stands for (`chosen_question`): "everyday savings" -> "everyday savings rate".
1. A message that names a term ("15 years", "12-month") but otherwise leans on the
   previous question ("and for 15 years?", "what about 12 months") takes the previous
   user question with its term replaced: "what's your 30 year fixed rate?" ->
   "what's your 15 years fixed rate?".
2. Any other elliptical message (starts with "and", "what about", "how about", "also",
   or is short and points back with "it", "that", "this", "those", "them") is appended to
   the previous user question, which is enough context for retrieval.
3. Everything else stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_TERM = re.compile(r"\b(\d{1,3})[\s-]*(years?|yrs?|months?|mos?)\b", re.IGNORECASE)
_TERM_ONLY = re.compile(
    r"^\W*(?:and|what about|how about|also|ok(?:ay)?|then)?\W*(?:the\s+|a\s+)?"
    r"(?:for\s+|with\s+|on\s+)?"
    r"(?:the\s+|a\s+)?(\d{1,3}[\s-]*(?:years?|yrs?|months?|mos?))(?:[\s-]*(?:term|one|loan|fixed))?"
    r"(?:\s+instead)?\W*$",
    re.IGNORECASE,
)
_LEADS = re.compile(
    r"^\W*(and|what about|how about|also|what if|same for|and for)\b", re.IGNORECASE
)
_POINTERS = re.compile(r"\b(it|that|this|those|them|they|its)\b", re.IGNORECASE)
_ASSENT = re.compile(
    r"^\W*(?:yes|yeah|yep|sure|ok(?:ay)?|please|go ahead)"
    r"(?:[\s,]+(?:please|thanks|thank you))?\W*$",
    re.IGNORECASE,
)


def _key(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .!?")


def chosen_question(message: str, offered: Mapping[str, str]) -> str | None:
    """The question behind the offered choice `message` picks, else None.

    `offered` maps each label the previous answer offered to the question it stands for.
    A message picks a choice when it is its label (case, spacing and a final "." or "?"
    aside), or when it assents ("yes", "sure, thanks") and only one choice was offered.
    """
    if not offered:
        return None
    key = _key(message)
    for label, question in offered.items():
        if _key(label) == key:
            return question
    if len(offered) == 1 and _ASSENT.match(message):
        return next(iter(offered.values()))
    return None


def rewrite_followup(message: str, previous_questions: Sequence[str]) -> str:
    """The message made self-contained using the most recent previous user question."""
    text = message.strip()
    if not previous_questions:
        return text
    previous = previous_questions[-1].strip()
    only_term = _TERM_ONLY.match(text)
    if only_term and _TERM.search(previous):
        new_term = only_term.group(1)
        return _TERM.sub(new_term, previous, count=1)
    if only_term:
        return f"{previous} {text}"
    words = re.findall(r"\w+", text)
    if _LEADS.match(text) or (len(words) <= 6 and _POINTERS.search(text)):
        return f"{previous} {text}"
    return text
