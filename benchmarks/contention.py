"""How much a competing CPU-bound process slows a local answer: quiet and loaded runs in one invocation.

    python3 benchmarks/contention.py [--model default] [--load 1] [--rounds 3] [--policy adaptive] [--json]
    python3 benchmarks/contention.py --compare --json      # every policy, each in its own process

One answer is a llama.cpp chat completion of a RAG prompt (six product sheets of the example catalogue as numbered
sources, then the README's question; about 700 prompt tokens) with ``--new-tokens`` greedy tokens. Each round
answers once on the machine as it is ("quiet") and once while ``--load`` busy-loop processes, started by this script
in their own session, compete for the CPUs ("loaded"); the order alternates between rounds so drift in the
background load falls on both sides. The ratio is median loaded seconds over median quiet seconds, measured in the
same run.

Policies (the OpenMP wait policy is read when llama.cpp loads, so each policy runs in a fresh process):

- ``adaptive``: ragkit's default: passive OpenMP waits and, before each call, no threads on CPUs that other
  runnable tasks hold;
- ``fixed-passive``: passive waits, always every CPU;
- ``fixed-spin``: threads spin at barriers (``OMP_WAIT_POLICY=ACTIVE``), always every CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

POLICIES = ("adaptive", "fixed-passive", "fixed-spin")
PROMPT_SOURCES = 6  # product sheets: about 700 prompt tokens with the chat template


def prompt() -> list:
    from generation import QUESTION, SYSTEM, catalog_sources  # this folder is on sys.path when run as a script

    from ragkit.types import Message

    sources = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(catalog_sources()[:PROMPT_SOURCES], 1))
    return [Message("system", SYSTEM), Message("user", f"Sources:\n\n{sources}\n\nQuestion: {QUESTION}")]


def generator_config(model: str, policy: str) -> dict:
    if policy == "adaptive":
        return {"model": model, "n_ctx": 2048}
    return {"model": model, "n_ctx": 2048, "adapt_threads": False}


def busy_loops(n: int, same_session: bool) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes; in their own session unless asked, as an unrelated program would run.

    Linux with autogroup scheduling (the default on desktop and many server kernels) shares the CPUs fairly between
    sessions first: a competitor started in this benchmark's own session would split this session's share with the
    answer, which is not what another program on the machine does.
    """
    # Spins until this benchmark exits, however it exits: a competitor in another session would outlive a kill -9.
    code = f"import os\nwhile os.getppid() == {os.getpid()}:\n    for _ in range(200_000): pass\n"
    return [subprocess.Popen([sys.executable, "-c", code], start_new_session=not same_session) for _ in range(n)]


def measure(model: str, policy: str, load: int, rounds: int, new_tokens: int, same_session: bool = False) -> dict:
    from ragkit.providers.llamacpp import LlamaCppGenerator
    from ragkit.retry import RetryConfig, RetryPolicy

    # A loaded run may be slow: the benchmark must time it, not abandon it at the default 120 s deadline.
    patient = RetryPolicy(RetryConfig(max_attempts=1, deadline_s=3600))
    gen = LlamaCppGenerator.from_config(generator_config(model, policy), retry=patient)
    t = time.perf_counter()
    gen.load()
    load_s = time.perf_counter() - t
    messages = prompt()

    def answer() -> tuple[float, dict]:
        t0 = time.perf_counter()
        reply = gen.generate_sync(messages, max_tokens=new_tokens)
        return time.perf_counter() - t0, {
            "threads": list(reply.metadata["n_threads"]),
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
        }

    answer()  # warm-up: page the weights in
    quiet, loaded, threads_quiet, threads_loaded, shape = [], [], [], [], {}
    load_avg_start = os.getloadavg()[0]
    for r in range(rounds):
        for side in ("quiet", "loaded") if r % 2 == 0 else ("loaded", "quiet"):
            procs = busy_loops(load, same_session) if side == "loaded" else []
            try:
                if procs:
                    time.sleep(0.5)  # let the competitors reach the run queue
                seconds, info = answer()
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            (quiet if side == "quiet" else loaded).append(round(seconds, 3))
            (threads_quiet if side == "quiet" else threads_loaded).append(info.pop("threads"))
            shape = info
    q, lo = statistics.median(quiet), statistics.median(loaded)
    return {
        "model": gen.config.model,
        "policy": policy,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_processes": load,
        "load_in_same_session": same_session,
        "rounds": rounds,
        **shape,
        "load_s": round(load_s, 2),
        "quiet_s": quiet,
        "loaded_s": loaded,
        "threads_quiet": threads_quiet,
        "threads_loaded": threads_loaded,
        "median_quiet_s": round(q, 3),
        "median_loaded_s": round(lo, 3),
        "ratio": round(lo / q, 2),
        "load_avg_1m_start": round(load_avg_start, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }


def run_policy_in_child(args: argparse.Namespace, policy: str) -> dict:
    env = dict(os.environ)
    env["OMP_WAIT_POLICY"] = "ACTIVE" if policy == "fixed-spin" else "PASSIVE"
    command = [sys.executable, os.path.abspath(__file__), "--policy", policy, "--json"]
    command += ["--model", args.model, "--load", str(args.load), "--rounds", str(args.rounds)]
    command += ["--new-tokens", str(args.new_tokens)] + (["--same-session"] if args.same_session else [])
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model name, alias or tier (default, fast, test)")
    parser.add_argument("--load", type=int, default=1, help="competing busy-loop processes in the loaded runs")
    parser.add_argument("--rounds", type=int, default=3, help="quiet/loaded pairs")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--policy", choices=POLICIES, default="adaptive")
    parser.add_argument(
        "--same-session", action="store_true", help="start the competitors in this session (shares its CPU slice)"
    )
    parser.add_argument("--compare", action="store_true", help="run every policy, each in a fresh process")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.compare:
        report = {
            "cpus": os.cpu_count(),
            "note": "machine shared with other jobs",
            "policies": [run_policy_in_child(args, p) for p in POLICIES],
        }
    else:
        if args.policy == "fixed-spin" and os.environ.get("OMP_WAIT_POLICY", "").upper() != "ACTIVE":
            parser.error("--policy fixed-spin needs OMP_WAIT_POLICY=ACTIVE in the environment (or use --compare)")
        report = {"cpus": os.cpu_count(), "note": "machine shared with other jobs", "policies": []}
        report["policies"].append(
            measure(args.model, args.policy, args.load, args.rounds, args.new_tokens, args.same_session)
        )
    if args.json:
        print(json.dumps(report if args.compare or len(report["policies"]) > 1 else report["policies"][0], indent=2))
        return
    print(f"{report['cpus']} CPUs, {args.load} competing process(es); the machine is shared with other jobs")
    print(f"{'policy':<14} {'quiet s':>8} {'loaded s':>9} {'ratio':>6}  threads quiet/loaded")
    for r in report["policies"]:
        print(
            f"{r['policy']:<14} {r['median_quiet_s']:>8} {r['median_loaded_s']:>9} {r['ratio']:>6}  "
            f"{r['threads_quiet']} / {r['threads_loaded']}"
        )


if __name__ == "__main__":
    main()
