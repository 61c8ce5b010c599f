"""Group-word swapping (he <-> she, man <-> woman, ...): the counterfactual every face can ask for.

Why here and not in the UI: swapping a demographic word and comparing answers is a probe, used by
the app's compare and counterfactual tools and by the chat's caveats alike.
"""

from __future__ import annotations

import re

# Group-word pairs used by the counterfactual swap (both directions).
PAIRS = [
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"),
    ("men", "women"), ("boy", "girl"), ("boys", "girls"), ("father", "mother"), ("son", "daughter"),
    ("brother", "sister"), ("husband", "wife"), ("king", "queen"), ("mr", "mrs"), ("male", "female"),
    ("gentleman", "lady"), ("uncle", "aunt"), ("nephew", "niece"), ("boyfriend", "girlfriend"),
    ("dad", "mom"), ("sons", "daughters"), ("fathers", "mothers"), ("brothers", "sisters"),
    ("husbands", "wives"), ("kings", "queens"), ("males", "females"), ("gentlemen", "ladies"),
]
SWAPS: dict[str, str] = {}
for _a, _b in PAIRS:
    SWAPS.setdefault(_a, _b)
    SWAPS.setdefault(_b, _a)
# "her" is ambiguous (him/his); "his" reads better in the sentences people type.
SWAPS["her"] = "his"
_WORD = re.compile(r"[A-Za-z]+")


def _match_case(word: str, template: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_group_words(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with each group word swapped (he<->she, man<->woman, ...), and the swaps made."""
    swaps: list[tuple[str, str]] = []

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        other = SWAPS.get(word.lower())
        if other is None:
            return word
        new = _match_case(other, word)
        swaps.append((word, new))
        return new

    # [MASK] contains letters; protect it from the word pattern.
    parts = re.split(r"(\[MASK\])", text)
    out = "".join(p if p == "[MASK]" else _WORD.sub(repl, p) for p in parts)
    return out, swaps
