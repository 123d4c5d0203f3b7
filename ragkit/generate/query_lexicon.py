"""The words and patterns query features look for, in English and German."""

from __future__ import annotations

import re

TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*|[?,;:\"“”„«»]", re.UNICODE)
# Whole ids only: not preceded or followed by a word character or a hyphen ("XLABO-288" or "LABO-288b" are no ids).
PRODUCT_ID = re.compile(r"(?<![\w-])[A-Z]{2,}(?:-[A-Z]+)*-\d+(?![\w-])", re.IGNORECASE)
QUOTED = re.compile(r"\"[^\"]{1,200}\"|“[^”]{1,200}”|„[^“”]{1,200}[“”]|«[^»]{1,200}»")
NUMBER = re.compile(r"(?<![\w-])\d+(?:[.,]\d+)*(?![\w-])")
YEAR = re.compile(r"(?<!\d)(?:1[0-9]{3}|20[0-9]{2})(?!\d)")

WH = {
    "what": "what",
    "who": "who",
    "whom": "who",
    "whose": "who",
    "when": "when",
    "where": "where",
    "which": "which",
    "how": "how",
    "why": "why",
}
WH_DE = {
    "was": "what",
    "wer": "who",
    "wen": "who",
    "wem": "who",
    "wessen": "who",
    "wann": "when",
    "wo": "where",
    "wohin": "where",
    "woher": "where",
    "welche": "which",
    "welcher": "which",
    "welches": "which",
    "welchen": "which",
    "welchem": "which",
    "wie": "how",
    "warum": "why",
    "wieso": "why",
    "weshalb": "why",
    "weswegen": "why",
    "ob": "yesno",
}
AUX = frozenset("is are was were am do does did can could has have had will would should shall may might must".split())
AUX_DE = frozenset(
    "ist sind war waren hat haben hatte hatten kann können konnte wird werden wurde wurden gibt gab "
    "stimmt darf dürfen muss müssen soll sollte sollen bin bist".split()
)
MULTI_PART = frozenset("and also both as well plus additionally und sowie auch beide beiden außerdem zudem".split())
COMPARISON = frozenset(
    "compare compared comparison vs versus than larger smaller bigger more less fewer older younger earlier later "
    "higher lower longer shorter same difference different differ similar better worse first last "
    "vergleiche vergleich vergleichen größer kleiner mehr weniger als älter jünger früher später höher niedriger "
    "länger kürzer unterschied unterschiede unterscheidet gleich gleiche gleichen selbe selben "
    "besser schlechter".split()
)
COMPARATIVE_ER = re.compile(r"^[a-zäöü]{3,}er$")  # "richer", "taller"; only counted when "than"/"als" follows
ALTERNATIVE = frozenset({"or", "oder", "either", "entweder"})
RELATIVE = frozenset({"who", "whom", "whose", "which", "that", "where", "when"})
RELATIVE_DE = frozenset({"der", "die", "das", "dessen", "deren", "welcher", "welche", "welches", "denen", "dem", "den"})
PREPOSITIONS = frozenset("in on at of for by with from to during under into".split())
SUBORDINATORS = frozenset(
    "because although while whereas since if unless after before "
    "weil obwohl während dass damit wenn falls nachdem bevor".split()
)
TOOLS = frozenset(
    "price prices cost costs cheapest cheaper expensive budget under below above over least most maximum minimum "
    "filter sort sorted list all count total sum average between within "
    "preis preise kostet kosten günstigste günstigsten billigste billigsten teuerste teuersten unter über unterhalb "
    "oberhalb mindestens höchstens maximal minimal liste alle sortiere filtere "
    "zwischen summe durchschnitt anzahl".split()
)
TOOL_PHRASES = re.compile(
    r"\bhow (?:many|much)\b|\bwie (?:viele?|teuer)\b|\blist all\b|\bat (?:least|most)\b", re.IGNORECASE
)
POSSESSIVE = re.compile(r"\bthe\s+(?:[\w-]+\s+){1,3}?of\s+(?:the|a|an|his|her|its|their)\b", re.IGNORECASE)
POSSESSIVE_DE = re.compile(r"\b(?:der|die|das|den|dem)\s+[\w-]+\s+(?:des|der|eines|einer)\s+\w+", re.IGNORECASE)
# "the county where ...", "a university that ...":
# an entity described by a relative clause, the bridge of a multi-hop question.
DESCRIBED = re.compile(r"\b(?:the|a|an)\s+(?:[\w'’-]+\s+){1,3}?(?:who|whom|whose|that|which|where)\b", re.IGNORECASE)
DESCRIBED_DE = re.compile(
    r"\b(?:der|die|das|den|dem|ein|eine|einen|einem)\s+(?:[\w-]+\s+){0,2}[\w-]+,\s*(?:der|die|das|dessen|deren|welche[rsnm]?|wo)\b",
    re.IGNORECASE,
)
# A noun described by a participle or a fixed linking phrase ("a film starring ...", "a game designed by ...",
# "known as", "ein Film mit ... in der Hauptrolle"): bridge questions hide their middle entity this way.
REDUCED = re.compile(
    r"\b(?:[\w-]+(?:ed|en|wn|ng) by|starring|featuring|based (?:on|in)|known (?:as|for)|"
    r"located in|named after|founded by|"
    r"born in|headquartered in|home to|"
    r"gespielt von|geschrieben von|gegründet von|bekannt (?:als|für)|basierend auf|benannt nach|"
    r"geboren in|mit [\w\s]{1,40} in der Hauptrolle|"
    r"(?:ge[\wäöü]+t|ge[\wäöü]+en) von)\b",
    re.IGNORECASE,
)
# Words that point back into a passage the asker is reading ("these colonies", "what did he"): reading-comprehension
# questions lean on them, self-contained multi-hop questions name their entities instead.
DEICTIC = frozenset(
    "this these those it its they their them he his him she her "
    "dies diese dieser dieses diesem diesen jene jener jenes er ihn ihm ihr ihre ihren sein seine seinen".split()
)
ACRONYM = re.compile(r"(?<![\w-])(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*\d|[A-Z0-9]{2,})[A-Z0-9]{2,}(?![\w-])")
GENITIVE_S = re.compile(r"\w['’]s\b")
NAME_LINK = frozenset({"of", "the", "de", "von", "van", "der", "du", "la", "le", "di", "da"})
ARTICLES_DE = frozenset(
    "der die das den dem des ein eine einen einem einer eines kein keine keinen mein meine dein sein seine ihr ihre "
    "unser unsere diese dieser dieses jede jeder jedes welche welcher welches welchen welchem".split()
)
# Function words that end a noun chain ("the annual documentary film festival" has a chain of four).
FUNCTION = (
    frozenset(WH)
    | frozenset(WH_DE)
    | AUX
    | AUX_DE
    | ARTICLES_DE
    | PREPOSITIONS
    | SUBORDINATORS
    | RELATIVE
    | DEICTIC
    | frozenset(
        "a an the and or but not no to as than so did does do be been being by also both such very most more "
        "und oder aber nicht kein als wie auch im am vom zum zur bei nach für auf mit von zu über unter es sich".split()
    )
)
SENTENCE_OPENERS = (
    frozenset(WH)
    | frozenset(WH_DE)
    | AUX
    | AUX_DE
    | ARTICLES_DE
    | PREPOSITIONS
    | SUBORDINATORS
    | frozenset(
        "a an the this that these those it he she they we i you there according after before "
        "im am vom zum zur bei nach für auf mit von zu ich es er sie wir nenne liste zeige gib "
        "name list show give tell find compare vergleiche".split()
    )
)

__all__ = [
    "ACRONYM",
    "ALTERNATIVE",
    "ARTICLES_DE",
    "AUX",
    "AUX_DE",
    "COMPARATIVE_ER",
    "COMPARISON",
    "DEICTIC",
    "DESCRIBED",
    "DESCRIBED_DE",
    "FUNCTION",
    "GENITIVE_S",
    "MULTI_PART",
    "NAME_LINK",
    "NUMBER",
    "POSSESSIVE",
    "POSSESSIVE_DE",
    "PREPOSITIONS",
    "PRODUCT_ID",
    "QUOTED",
    "REDUCED",
    "RELATIVE",
    "RELATIVE_DE",
    "SENTENCE_OPENERS",
    "SUBORDINATORS",
    "TOKEN",
    "TOOLS",
    "TOOL_PHRASES",
    "WH",
    "WH_DE",
    "YEAR",
]
