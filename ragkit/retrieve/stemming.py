"""Snowball stemmers (PyStemmer) and stopword lists per language, for the BM25 analyzer.

Languages are ISO 639-1 codes. A code with no Snowball algorithm gets no stemmer (``stemmer_for`` returns None);
stopword lists exist for English and German only, other languages keep every word.
"""

from __future__ import annotations

import functools
from typing import Callable

from ragkit.errors import ConfigError

# ISO 639-1 code -> PyStemmer algorithm name.
SNOWBALL: dict[str, str] = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "sv": "swedish",
    "da": "danish",
    "no": "norwegian",
    "fi": "finnish",
    "ru": "russian",
    "pl": "polish",
    "tr": "turkish",
    "hu": "hungarian",
    "ro": "romanian",
}

# Function words only: pronouns, articles, auxiliaries, prepositions, conjunctions, question words. Content words
# that buyers and papers search by ("not", "no", "without", "nicht", "ohne", numbers) are kept.
_EN = """
a about above after again against all am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself nor of off on once only or other
ought our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves also may might must shall upon us via whose whether
"""
_DE = """
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf aus bei bin
bis bist da damit dann das dass dasselbe dazu dein deine deinem deinen deiner dem demselben den denn denselben der
derer derselbe derselben des desselben dessen dich die dies diese dieselbe dieselben diesem diesen dieser dieses dir
doch dort du durch ein eine einem einen einer eines einig einige einigem einigen einiger einiges einmal er es etwas
euch euer eure eurem euren eurer für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen
ihr ihre ihrem ihren ihrer ihres im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes jetzt
kann können könnte man manche manchem manchen mancher manches mein meine meinem meinen meiner mich mir mit muss
musste nach nun nur ob oder seid sein seine seinem seinen seiner seines selbst sich sie sind so solche solchem
solchen solcher solches soll sollte sondern sonst über um und uns unser unsere unserem unseren unserer unter vom
von vor war waren warst was weg weil welche welchem welchen welcher welches wenn wer werde werden wie wieder will
wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen gibt es wieviel wie viel viele
"""


def _words(block: str) -> frozenset[str]:
    return frozenset(w.casefold() for w in block.split())


STOPWORDS: dict[str, frozenset[str]] = {"en": _words(_EN), "de": _words(_DE)}


def stopwords_for(language: str) -> frozenset[str]:
    """The stopword list of ``language`` (empty for languages without one)."""
    return STOPWORDS.get(language, frozenset())


def has_stemmer(language: str) -> bool:
    return language in SNOWBALL


@functools.lru_cache(maxsize=None)
def _algorithm(name: str) -> Callable[[str], str]:
    try:
        import Stemmer
    except ImportError as e:  # a declared dependency; only a broken install lands here
        raise ConfigError("Snowball stemming needs PyStemmer: pip install PyStemmer") from e
    return Stemmer.Stemmer(name).stemWord


def stemmer_for(language: str) -> Callable[[str], str] | None:
    """A function word -> stem for ``language``, or None when Snowball has no algorithm for it.

    PyStemmer objects are not safe to share across threads; the analyzer calls them from one thread (the event
    loop) and memoises results, which is all the indexer and the retriever need.
    """
    name = SNOWBALL.get(language)
    return _algorithm(name) if name else None


__all__ = ["SNOWBALL", "STOPWORDS", "stopwords_for", "has_stemmer", "stemmer_for"]
