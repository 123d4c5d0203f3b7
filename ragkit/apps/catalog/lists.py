"""Lists in questions: which phrases belong to one list ("fridges or freezers", "Kühlboxen, Träger"), which a
negation excludes (before them, "not cold boxes or carriers", or after, "Kühlboxen ausgenommen"), and German words
cut off before a list word ("Kühl- oder Gefriergeräte")."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ragkit.apps.catalog.phrases import Match, Token, forms
from ragkit.apps.catalog.words import LIST_JOINERS


def joined(text: str, toks: Sequence[Token], first: Match, then: Match) -> bool:
    """Whether ``then`` continues a list that ``first`` is in: after a comma, or an "or"/"and" between them."""
    if then.i == first.j and then.i < len(toks):
        return "," in text[toks[first.j - 1].word_end : toks[then.i].word_start]
    return then.i == first.j + 1 and toks[first.j].norm in LIST_JOINERS


def negated_spans(text: str, toks: Sequence[Token], found: Sequence[Match], spans: Sequence[Match]) -> list[Match]:
    """The spans a negation excludes: right after "no"/"not"/"ohne" and the list that goes on from there, or the
    list right before an after-negation ("Kühlboxen und Impfstoffträger ausgenommen")."""
    negations = {m.j for m in found if m.payload == ("cue", "negation")}
    negated = [c for c in spans if c.i in negations or c.i - 1 in negations]
    for c in spans:
        if c not in negated and any(joined(text, toks, n, c) for n in negated):
            negated.append(c)
    after = [m for m in found if m.payload == ("cue", "negation_after")]
    for c in reversed(spans):
        if c not in negated and (
            any(c.j == m.i for m in after) or any(joined(text, toks, c, n) for n in negated if n.i > c.i)
        ):
            negated.append(c)
    return negated


def agreed_categories(text: str, toks: Sequence[Token], spans: Sequence[Match[frozenset[str]]]) -> list[str] | None:
    """The categories the question's category phrases agree on: a list ("fridges or freezers") is either of its
    members; separate phrases ("solar" ... "fridge") must all hold, unless nothing would."""
    groups: list[list[Match[frozenset[str]]]] = []
    for c in sorted(spans, key=lambda m: m.i):
        if groups and (c.i == groups[-1][-1].i or joined(text, toks, groups[-1][-1], c)):
            groups[-1].append(c)
        else:
            groups.append([c])
    if not groups:
        return None
    sets = [frozenset().union(*(m.payload for m in g)) for g in groups]
    return sorted(frozenset.intersection(*sets) or frozenset.union(*sets))


def complete_elisions(toks: Sequence[Token], words: set[str]) -> list[Token]:
    """"Kühl- oder Gefriergerät" is "Kühlgerät oder Gefriergerät": a word cut off with a hyphen before "und"/"oder"
    takes the end of the word after it that makes it one of ``words`` (the schema's and the categories')."""
    out = list(toks)
    for k in range(len(toks) - 2):
        t = toks[k]
        if not (t.word.endswith("-") and t.end == t.word_end - 1 and toks[k + 1].norm in LIST_JOINERS):
            continue
        nxt = toks[k + 2].norm
        for cut in range(1, len(nxt) - 2):
            whole = t.norm + nxt[cut:]
            if forms(whole) & words:
                out[k] = replace(t, norm=whole)
                break
    return out


__all__ = ["joined", "negated_spans", "agreed_categories", "complete_elisions"]
