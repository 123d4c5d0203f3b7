"""Test helper: writes a minimal llama-architecture GGUF with random weights that llama.cpp loads in milliseconds.

Its text is gibberish; it exists to exercise the plumbing (chat template, usage, stop reasons, streaming,
grammars, tokenizer) without the real model. Needs the ``gguf`` package (``pip install gguf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A ChatML template, so llama-cpp-python's Jinja2 chat handler has one to read from the metadata.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = (
    "the a of to and in is it that for on with as was he be by at or this are from have not but what all were "
    "we when your can said there use an each which she do how their if will up other about out many then them "
    "these so some her would make like him into time has look two more write go see number no way could people "
    "hello world price product answer tool call yes"
).split()

N_EMBD, N_HEAD, N_LAYER, N_FF, N_CTX = 64, 4, 2, 128, 512


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocabulary: specials, the 256 byte tokens, single characters, some words.

    llama.cpp aborts on load without all 256 byte tokens. A random model emits lone UTF-8 bytes, which
    llama-cpp-python's streaming drops, so streamed and whole texts of this model may differ; real models' do not.
    """
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [2, 3, 3, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    pieces: list[str] = []
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789{}[]\":,._-?!'":
        pieces.append(ch)
    pieces += ["\u2581" + w for w in WORDS]
    tokens += pieces
    types += [1] * len(pieces)
    # Longer pieces score higher so the SentencePiece merge prefers whole words.
    scores = [0.0] * (5 + 256) + [float(len(p)) - 100.0 for p in pieces]
    return tokens, scores, types


def write_tiny_llama_gguf(path: str | Path, *, seed: int = 0) -> Path:
    """Write the tiny model to ``path`` (about 0.5 MB) and return the path."""
    import gguf

    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("ragkit-tiny-test")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n_vocab)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(4)  # <|im_end|> ends a turn, like ChatML models
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5 / np.sqrt(shape[-1])).astype(np.float32)

    ones = np.ones(N_EMBD, dtype=np.float32)
    # numpy shape (out, in) is ggml's [in, out], as the HF converters write linear layers.
    w.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", weight(n_vocab, N_EMBD) * 8)
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        w.add_tensor(f"blk.{i}.attn_q.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_k.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_v.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_output.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weight(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_up.weight", weight(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_down.weight", weight(N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
