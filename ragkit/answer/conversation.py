"""Conversation-aware retrieval: a follow-up rewritten into a standalone search query, and history kept in budget.

A question that refers to nothing earlier ("Which freezers reach -86 °C?") is searched as it is, at no cost: a
rule looks for words that point back (pronouns, demonstratives, "the cheaper one", "what about …", German "er",
"dessen", "davon", …). A follow-up ("How much does it cost?") goes to the local model with the last turns, which
writes the standalone question. The model's answer is used only when it passes checks (one line, the follow-up's
own content words kept, something from the conversation added, not an abstention); otherwise, or with no model,
the follow-up is searched together with the previous question's content words, which hybrid retrieval handles well.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.errors import RagkitError
from ragkit.language import is_abstention
from ragkit.types import Message

log = logging.getLogger("ragkit.answer.conversation")

Method = Literal["none", "standalone", "model", "context"]

# Words that point back to something said earlier (English and German).
_REFERRING = frozenset(
    "it its itself they them their theirs this that these those he him his she her hers one ones former latter "
    "same other another there both either neither such "
    "er sie es ihn ihm ihr ihre ihren ihrem ihrer sein seine seinen seinem seiner dessen deren denen dies diese "
    "dieser dieses diesen diesem jene jener jenes jenen dort davon dafür damit darin daran dazu dabei derselbe "
    "dieselbe dasselbe beide beiden".split()
)
# Openings of an elliptical follow-up ("and the price?", "what about the LABO-300?").
_FOLLOW_UP_START = re.compile(
    r"^\s*(?:and|also|but|so|then|what about|how about|und|auch|aber|dann|was ist mit|wie ist es mit|"
    r"und was|wie steht es mit)\b",
    re.IGNORECASE,
)
# "it" and "es" without a referent: "is it true that …", "gibt es …".
_EXPLETIVE = re.compile(r"\b(?:gibt es|es gibt|(?:is it|it is) (?:true|possible|necessary)(?: that)?)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:[-./][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CITATION = re.compile(r"\[\d+(?:[,;\s-]+\d+)*\]")
_QUESTION_WORDS = frozenset(
    "what which who whom whose where when why how does did do is are was were can could would should the and for "
    "with from about much many any some tell give show please was welche welcher welches welchen wer wie wo wann "
    "warum wieviel viel viele gibt ist sind hat haben kann der die das den dem des und mit von für bitte".split()
)


class ConversationSettings(ComponentConfig):
    """How follow-up questions are turned into standalone search queries (the ``conversation`` block)."""

    rewrite: Literal["auto", "rules", "off"] = Field(
        "auto",
        description="auto: rules, then the local model for follow-ups; rules: never call a model; off: search the "
        "question as asked.",
    )
    generator: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Generator that rewrites follow-ups; default: the router's local generator, else the default.",
    )
    max_turns: int = Field(3, ge=1, le=20, description="Last user/assistant turns shown to the rewriting model.")
    max_turn_chars: int = Field(400, ge=50, le=10_000, description="Each earlier turn is cut to this many characters.")
    max_query_chars: int = Field(400, ge=20, le=5000, description="Longest rewritten query accepted from the model.")
    max_output_tokens: int = Field(64, ge=8, le=1024, description="Tokens the model may spend on the rewrite.")


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The query that retrieval searched, and how it came about (``Reply.metadata["query"]``)."""

    original: str
    query: str
    method: Method
    reason: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


REWRITE_SYSTEM_PROMPT = (
    "Rewrite the user's last question as one standalone question that can be understood without the conversation. "
    "Replace pronouns and references such as 'it', 'they' or 'the second one' with the names they refer to. "
    "Keep the question's language. Do not answer it. Reply with the rewritten question only."
)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Words that carry the topic: not question or function words, not referring words; ids and numbers kept."""
    out = []
    for w in _words(text):
        if w in _QUESTION_WORDS or w in _REFERRING:
            continue
        if len(w) >= 3 or any(ch.isdigit() for ch in w):
            out.append(w)
    return list(dict.fromkeys(out))


def needs_context(question: str) -> str | None:
    """Why ``question`` seems to depend on earlier turns (the referring word or opening), or None if it stands alone."""
    text = _EXPLETIVE.sub(" ", question)
    m = _FOLLOW_UP_START.match(text)
    if m:
        return f"opens like a follow-up ({m.group(0).strip().lower()!r})"
    for w in _words(text):
        if w in _REFERRING:
            return f"refers back ({w!r})"
    if len(content_words(question)) == 0:
        return "names no topic of its own"
    return None


def _turns_text(history: Sequence[Message], settings: ConversationSettings) -> str:
    turns = [m for m in history if m.role in ("user", "assistant") and m.content.strip()]
    lines = []
    for m in turns[-2 * settings.max_turns :]:
        text = " ".join(_CITATION.sub("", m.content).split())
        if len(text) > settings.max_turn_chars:
            text = text[: settings.max_turn_chars].rsplit(" ", 1)[0] + " …"
        lines.append(f"{'User' if m.role == 'user' else 'Assistant'}: {text}")
    return "\n".join(lines)


def rewrite_messages(question: str, history: Sequence[Message], settings: ConversationSettings) -> list[Message]:
    """The prompt that asks a model for the standalone question."""
    user = f"Conversation:\n{_turns_text(history, settings)}\n\nLast question: {question}\n\nStandalone question:"
    return [Message("system", REWRITE_SYSTEM_PROMPT), Message("user", user)]


def check_rewrite(candidate: str, question: str, history: Sequence[Message], max_chars: int) -> str | tuple[None, str]:
    """The model's rewrite, cleaned, or ``(None, why it was refused)``."""
    lines = [ln.strip() for ln in candidate.strip().splitlines() if ln.strip()]
    if not lines:
        return None, "the model returned nothing"
    text = re.sub(r"^(?:standalone question|rewritten question|question|frage)\s*:\s*", "", lines[0], flags=re.I)
    text = text.strip().strip("\"'“”„`").strip()
    if not text or len(text) > max_chars:
        return None, f"rewrite empty or longer than {max_chars} characters"
    if is_abstention(text):
        return None, "the model abstained"
    if question.rstrip().endswith("?") and not text.endswith("?"):
        return None, "rewrite is not a question (the model answered instead?)"
    said = " ".join([question, *(m.content for m in history)])
    invented = [n for n in _NUMBER.findall(text) if n not in said]
    if invented:
        return None, f"rewrite has numbers the conversation does not ({', '.join(invented[:3])})"
    own = content_words(question)
    words = set(content_words(text))
    if own and sum(w in words for w in own) < (len(own) + 1) // 2:
        return None, "rewrite dropped the question's own words"
    earlier = set(content_words(" ".join(m.content for m in history if m.role in ("user", "assistant"))))
    if not (words - set(own)) & earlier:
        return None, "rewrite added nothing from the conversation"
    return text


def context_query(question: str, history: Sequence[Message], limit: int = 12) -> str:
    """The follow-up plus the last user question's content words and the names (ids, capitalised words) in the last
    answer: the rule fallback, for hybrid retrieval to match."""
    last_user = next((m.content for m in reversed(history) if m.role == "user" and m.content.strip()), "")
    last_answer = next((m.content for m in reversed(history) if m.role == "assistant" and m.content.strip()), "")
    names = [w for w in _WORD.findall(_CITATION.sub("", last_answer)) if _is_name(w)]
    seen = set(content_words(question))
    extra = []
    for word in [*names, *content_words(last_user)]:  # names first, as written; then the topic words
        if word.lower() not in seen:
            seen.add(word.lower())
            extra.append(word)
    return f"{question} {' '.join(extra[:limit])}".strip()


def _is_name(word: str) -> bool:
    """An id or a proper name: has a digit next to letters, or capitals past the first letter ("LABO-288", "iPhone")."""
    has_digit = any(ch.isdigit() for ch in word)
    has_alpha = any(ch.isalpha() for ch in word)
    return (has_digit and has_alpha) or any(ch.isupper() for ch in word[1:])


GenerateFn = Callable[[list[Message], int], Any]  # (messages, max_tokens) -> awaitable Reply


async def rewrite_query(
    question: str,
    history: Sequence[Message],
    settings: ConversationSettings,
    generate: GenerateFn | None = None,
    on_reply: Callable[[Any], None] | None = None,
) -> Rewrite:
    """The standalone query for ``question`` after ``history``; ``generate`` is the local model (None: rules only)."""
    if settings.rewrite == "off" or not any(m.role in ("user", "assistant") for m in history):
        return Rewrite(question, question, "none", "no earlier turns" if settings.rewrite != "off" else "rewrite off")
    why = needs_context(question)
    if why is None:
        return Rewrite(question, question, "standalone", "no word refers to earlier turns")
    refused = "rules only" if settings.rewrite == "rules" or generate is None else ""
    if not refused:
        try:
            reply = await generate(rewrite_messages(question, history, settings), settings.max_output_tokens)
            if on_reply is not None:
                on_reply(reply)
            checked = check_rewrite(reply.text, question, history, settings.max_query_chars)
        except RagkitError as e:
            log.warning("query rewrite failed, using the previous question's words: %s: %s", type(e).__name__, e)
            checked = (None, f"the model failed ({type(e).__name__})")
        if isinstance(checked, str):
            return Rewrite(question, checked, "model", why)
        refused = checked[1]
    return Rewrite(question, context_query(question, history), "context", f"{why}; {refused}")


async def rewrite_for(
    question: str, history: Sequence[Message], config: Any, ledger: Any, generator: Callable[[str | None], Any]
) -> Rewrite:
    """``rewrite_query`` as a pipeline runs it: settings from its config (the ``conversation`` block), the rewriting
    model by name (the setting, else the router's local generator, else the default), its usage in the ledger."""
    settings = config.settings["conversation"]
    if not history or settings.rewrite == "off":
        return await rewrite_query(question, history, settings)
    router = config.components.get("router")
    name = settings.generator or getattr(router and router.config, "local_generator", None)
    with ledger.stage("rewrite") as stage:
        generate = lambda messages, n: generator(name).generate(messages, max_tokens=n)
        return await rewrite_query(question, history, settings, generate, stage.add_reply)


def trim_history(history: Sequence[Message], count: Callable[[str], int], max_tokens: int) -> list[Message]:
    """The most recent messages whose content fits ``max_tokens``, dropping the oldest first; a leading assistant
    message left without its question is dropped too. System messages in the history are kept out."""
    kept: list[Message] = []
    used = 0
    for m in reversed([m for m in history if m.role in ("user", "assistant")]):
        tokens = count(m.content) + 4
        if used + tokens > max_tokens:
            break
        kept.append(m)
        used += tokens
    kept.reverse()
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return kept


__all__ = [
    "ConversationSettings",
    "Rewrite",
    "rewrite_query",
    "rewrite_for",
    "needs_context",
    "content_words",
    "check_rewrite",
    "context_query",
    "rewrite_messages",
    "trim_history",
    "REWRITE_SYSTEM_PROMPT",
]
