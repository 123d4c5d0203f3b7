"""Local generation speed per model tier under llama.cpp: prompt and generation tokens/s, and a 1,000-token RAG prompt.

    python3 benchmarks/generation.py [--models default,fast,test] [--threads auto] [--new-tokens 32] [--repeat 2]
                                     [--json]

For each model: a RAG prompt (a system line, the example catalogue's product sheets as numbered sources, the
README's question) cut to exactly ``--prompt-tokens`` tokens
in the model's ChatML template is evaluated from an empty context (prompt tokens/s, and its seconds to the first
token), then ``--new-tokens`` tokens are generated greedily with end-of-turn ignored (generation tokens/s); best of
``--repeat``. ``rag_answer_s`` is the same prompt answered through ``LlamaCppGenerator.generate`` (the public path,
chat template and all), capped at ``--new-tokens``.

``--threads auto`` takes the threads ragkit would pick right now (the CPUs no other runnable task holds) and keeps
them for the whole run, so the tiers are compared on equal terms; give numbers (``--threads 1,2``) to sweep. CPU
only unless the installed llama-cpp-python has GPU offload and a GPU is visible (``n_gpu_layers`` says which).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from ragkit.local_models import known_model
from ragkit.providers.llamacpp import LlamaCppGenerator, choose_threads, runnable_elsewhere, usable_cpus
from ragkit.retry import RetryConfig, RetryPolicy
from ragkit.types import Message

SYSTEM = "Answer from the numbered sources only, citing them as [n]. If they do not hold the answer, say so."
QUESTION = "Which freezers reach -86 °C, and how many litres does each hold?"
DOCS = Path(__file__).resolve().parents[1] / "examples" / "product_qa" / "docs"


def catalog_sources() -> list[str]:
    """The first (English) paragraph of every example product sheet, the -86 °C ones first, as retrieval would."""
    paragraphs = []
    for path in sorted(DOCS.glob("*.md")):
        blocks = [b.strip() for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
        body = next((b for b in blocks if not b.startswith("#")), "")
        if body:
            paragraphs.append(body)
    return sorted(paragraphs, key=lambda p: "-86" not in p)


def chatml(system: str, user: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def rag_prompt(gen: LlamaCppGenerator, n_tokens: int) -> tuple[str, list[int]]:
    """Sources cut so the templated prompt is exactly ``n_tokens`` tokens; the user text and its tokens."""
    llama = gen.llama

    def tokens(sources: str) -> list[int]:
        text = chatml(SYSTEM, f"Sources:\n\n{sources}\n\nQuestion: {QUESTION}")
        return llama.tokenize(text.encode(), add_bos=False, special=True)

    sources = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(catalog_sources(), 1))
    lo, hi = 0, len(sources)
    while lo < hi:  # the longest prefix of the sources that fits
        mid = (lo + hi + 1) // 2
        if len(tokens(sources[:mid])) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    cut = sources[:lo]
    toks = tokens(cut)
    for _ in range(4):  # filler words make up the last few tokens
        if len(toks) >= n_tokens:
            break
        cut += " ok" * (n_tokens - len(toks))
        toks = tokens(cut)
    return f"Sources:\n\n{cut}\n\nQuestion: {QUESTION}", toks


def measure(gen: LlamaCppGenerator, prompt_tokens: list[int], new_tokens: int) -> tuple[float, float]:
    """Seconds to the first sampled token from an empty context, and for ``new_tokens`` more tokens."""
    llama = gen.llama
    llama.reset()
    t0 = time.perf_counter()
    tokens = llama.generate(prompt_tokens, temp=0.0, repeat_penalty=1.0)
    next(tokens)
    t1 = time.perf_counter()
    for _ in range(new_tokens):
        next(tokens)
    t2 = time.perf_counter()
    tokens.close()
    return t1 - t0, t2 - t1


def run_model(name: str, threads: int, prompt_len: int, new_tokens: int, repeat: int) -> dict:
    config = {"model": name, "n_ctx": 2048, "n_threads": threads, "adapt_threads": False}
    gen = LlamaCppGenerator.from_config(config, retry=RetryPolicy(RetryConfig(max_attempts=1, deadline_s=3600)))
    t = time.perf_counter()
    gen.load()
    load_s = time.perf_counter() - t
    user, toks = rag_prompt(gen, prompt_len)
    measure(gen, toks[:64], 4)  # warm-up: page the weights in
    runs = [measure(gen, toks, new_tokens) for _ in range(repeat)]
    pp = min(r[0] for r in runs)
    tg = min(r[1] for r in runs)
    t = time.perf_counter()
    reply = gen.generate_sync([Message("system", SYSTEM), Message("user", user)], max_tokens=new_tokens)
    answer_s = time.perf_counter() - t
    model = known_model(name)
    return {
        "model": model.name,
        "tier": name,
        "file_bytes": model.source.size_bytes,
        "n_threads": threads,
        "n_gpu_layers": gen.n_gpu_layers,
        "load_s": round(load_s, 2),
        "prompt_tokens": len(toks),
        "prompt_tokens_per_s": round(len(toks) / pp, 1),
        "rag_prompt_s": round(pp, 3),
        "generation_tokens_per_s": round(new_tokens / tg, 1),
        "rag_answer_s": round(answer_s, 3),
        "rag_answer_tokens": [reply.usage.input_tokens, reply.usage.output_tokens],
        "rag_answer": reply.text[:200],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,fast,test", help="comma-separated model names, aliases or tiers")
    parser.add_argument("--threads", default="auto", help="'auto' or comma-separated n_threads values")
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    cpus = usable_cpus()
    busy = runnable_elsewhere()
    threads = (
        [choose_threads(cpus, cpus, busy)] if args.threads == "auto" else [int(x) for x in args.threads.split(",")]
    )
    load_avg = os.getloadavg()[0]
    rows = [
        run_model(name.strip(), n, args.prompt_tokens, args.new_tokens, args.repeat)
        for name in args.models.split(",")
        for n in threads
    ]
    report = {
        "cpus": cpus,
        "runnable_elsewhere_at_start": busy,
        "load_avg_1m_start": round(load_avg, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "machine": platform.processor() or platform.machine(),
        "new_tokens": args.new_tokens,
        "repeat": args.repeat,
        "results": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print(
        f"{cpus} CPUs, load average {report['load_avg_1m_start']} -> {report['load_avg_1m_end']}; "
        f"{args.prompt_tokens}-token RAG prompt, {args.new_tokens} new tokens, best of {args.repeat}"
    )
    print(f"{'model':<30} {'thr':>3} {'prompt tok/s':>12} {'gen tok/s':>9} {'1k prompt s':>11} {'answer s':>8}")
    for r in rows:
        print(
            f"{r['model']:<30} {r['n_threads']:>3} {r['prompt_tokens_per_s']:>12} {r['generation_tokens_per_s']:>9} "
            f"{r['rag_prompt_s']:>11} {r['rag_answer_s']:>8}"
        )


if __name__ == "__main__":
    main()
