"""Local generation speed of the bundled SmolLM2-135M (Q4_1) under llama.cpp: prompt processing and generation.

    python3 benchmarks/generation.py [--threads 1,2] [--new-tokens 64] [--repeat 3] [--json]

A fixed prompt of about 200 tokens is evaluated from an empty context (prompt tokens/s), then ``--new-tokens``
tokens are generated greedily, end-of-turn ignored (generation tokens/s). Best of ``--repeat`` runs per thread
count. CPU only unless the installed llama-cpp-python was built with GPU offload and a GPU is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from ragkit.providers.llamacpp import LlamaCppGenerator
from ragkit.types import Message

PROMPT = (
    "You answer questions about a catalogue of laboratory freezers. Use only the facts below.\n"
    "LABO-288: upright freezer, 288 litres, -20 to -30 degrees Celsius, 5 shelves, 39 dB, alarm for door and "
    "temperature, 230 V, energy class C, price 1,290 euros, delivered in 5 working days.\n"
    "LABO-340: upright freezer, 340 litres, -40 degrees Celsius, 6 shelves, 43 dB, USB data logger, 230 V, "
    "energy class D, price 1,740 euros, delivered in 10 working days.\n"
    "Question: which freezer should a small laboratory buy to store reagents at -30 degrees, quietly, for "
    "less than 1,500 euros, and how soon can it arrive? Explain briefly."
)


def measure(gen: LlamaCppGenerator, prompt_tokens: list[int], new_tokens: int) -> tuple[float, float]:
    """Seconds for prompt processing (to the first sampled token) and for ``new_tokens`` more tokens."""
    llama = gen.llama
    llama.reset()  # an empty context: no prefix reuse between runs
    t0 = time.perf_counter()
    tokens = llama.generate(prompt_tokens, temp=0.0, repeat_penalty=1.0)
    next(tokens)
    t1 = time.perf_counter()
    for _ in range(new_tokens):
        next(tokens)
    t2 = time.perf_counter()
    tokens.close()
    return t1 - t0, t2 - t1


def run(threads: list[int], new_tokens: int, repeat: int) -> dict:
    rows = []
    prompt_len = 0
    for n in threads:
        gen = LlamaCppGenerator.from_config({"n_ctx": 1024, "n_threads": n, "n_threads_batch": n})
        t_load = time.perf_counter()
        gen.load()
        load_s = time.perf_counter() - t_load
        # The prompt as the chat template renders it, so the numbers match what generate() evaluates.
        prompt_tokens = gen.llama.tokenize(
            f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n".encode(), add_bos=False, special=True
        )
        prompt_len = len(prompt_tokens)
        measure(gen, prompt_tokens, 4)  # warm-up: page the weights in
        runs = [measure(gen, prompt_tokens, new_tokens) for _ in range(repeat)]
        pp = min(r[0] for r in runs)
        tg = min(r[1] for r in runs)
        rows.append(
            {
                "n_threads": n,
                "load_s": round(load_s, 3),
                "prompt_tokens_per_s": round(prompt_len / pp, 1),
                "prompt_s": round(pp, 4),
                "generation_tokens_per_s": round(new_tokens / tg, 1),
                "generation_s": round(tg, 4),
                "n_gpu_layers": gen.n_gpu_layers,
            }
        )
        # A short end-to-end call through the public API, to show the wrapper adds little.
        t = time.perf_counter()
        reply = gen.generate_sync([Message("user", PROMPT)], max_tokens=new_tokens)
        rows[-1]["generate_call_s"] = round(time.perf_counter() - t, 3)
        rows[-1]["generate_call_output_tokens"] = reply.usage.output_tokens
    return {
        "model": "smollm2-135m-instruct (Q4_1 GGUF)",
        "prompt_tokens": prompt_len,
        "new_tokens": new_tokens,
        "repeat": repeat,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "machine": platform.processor() or platform.machine(),
        "results": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated n_threads values")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    report = run([int(x) for x in args.threads.split(",")], args.new_tokens, args.repeat)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['model']}: prompt {report['prompt_tokens']} tokens, {report['new_tokens']} new tokens, "
        f"best of {report['repeat']}; {report['cpu_count']} CPUs, load average {report['load_avg_1m']}"
    )
    print(f"{'threads':>7} {'prompt tok/s':>13} {'gen tok/s':>10} {'generate() s':>13}")
    for r in report["results"]:
        print(
            f"{r['n_threads']:>7} {r['prompt_tokens_per_s']:>13} {r['generation_tokens_per_s']:>10} "
            f"{r['generate_call_s']:>13}"
        )


if __name__ == "__main__":
    main()
