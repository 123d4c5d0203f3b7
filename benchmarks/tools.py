"""Tool-round concurrency: N independent 200 ms tools (async and sync) in one round vs one by one; a limit of 10
under 100 calls.

python3 benchmarks/tools.py [--calls 8] [--delay-ms 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from ragkit.tools import FunctionTool, Toolset
from ragkit.types import ToolCall

TARGET_RATIO = 1.25  # one round of N tools should take at most 1.25 x one tool


def _calls(name: str, n: int) -> list[ToolCall]:
    return [ToolCall(id=f"{name}-{i}", name=name, arguments=json.dumps({"i": i})) for i in range(n)]


async def _time_round(ts: Toolset, calls: list[ToolCall]) -> float:
    start = time.perf_counter()
    out = await ts.run_calls(calls)
    elapsed = time.perf_counter() - start
    bad = [m.content for m in out if m.is_error]
    if bad:
        raise SystemExit(f"tool errors: {bad[:3]}")
    return elapsed


async def _time_sequential(ts: Toolset, calls: list[ToolCall]) -> float:
    start = time.perf_counter()
    for c in calls:
        await ts.run_calls([c])
    return time.perf_counter() - start


async def bench(n: int, delay_s: float, limited_calls: int, limit: int) -> dict:
    async def async_tool(i: int) -> int:
        await asyncio.sleep(delay_s)
        return i

    def sync_tool(i: int) -> int:
        time.sleep(delay_s)
        return i

    in_flight = 0
    max_in_flight = 0

    async def limited_tool(i: int) -> int:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            in_flight -= 1
        return i

    async def noop(i: int) -> int:
        return i

    with Toolset([async_tool, sync_tool, noop, FunctionTool.from_function(limited_tool, max_concurrent=limit)]) as ts:
        await ts.run_calls(_calls("sync_tool", 1))  # start the thread pool outside the timing
        result: dict = {"calls": n, "delay_ms": delay_s * 1000}
        for name in ("async_tool", "sync_tool"):
            calls = _calls(name, n)
            parallel = await _time_round(ts, calls)
            sequential = await _time_sequential(ts, calls)
            result[name] = {
                "parallel_ms": round(parallel * 1000, 1),
                "sequential_ms": round(sequential * 1000, 1),
                "ratio_to_one_call": round(parallel / delay_s, 3),
                "speedup": round(sequential / parallel, 2),
                "ok": parallel <= TARGET_RATIO * delay_s,
            }
        start = time.perf_counter()
        await _time_round(ts, _calls("limited_tool", limited_calls))
        result["limited"] = {
            "calls": limited_calls,
            "limit": limit,
            "max_in_flight": max_in_flight,
            "wall_ms": round((time.perf_counter() - start) * 1000, 1),
            "ok": max_in_flight <= limit,
        }
        overhead_calls = _calls("noop", 1000)
        start = time.perf_counter()
        await _time_round(ts, overhead_calls)
        result["overhead_us_per_call"] = round((time.perf_counter() - start) / len(overhead_calls) * 1e6, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=8)
    p.add_argument("--delay-ms", type=float, default=200.0)
    p.add_argument("--limited-calls", type=int, default=100)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    r = asyncio.run(bench(args.calls, args.delay_ms / 1000, args.limited_calls, args.limit))
    if args.json:
        print(json.dumps(r))
    else:
        for name in ("async_tool", "sync_tool"):
            x = r[name]
            print(
                f"{args.calls} x {name} ({args.delay_ms:g} ms each): parallel {x['parallel_ms']} ms, "
                f"sequential {x['sequential_ms']} ms, parallel/one-call {x['ratio_to_one_call']} "
                f"(target <= {TARGET_RATIO}), speedup {x['speedup']}x  {'OK' if x['ok'] else 'SLOW'}"
            )
        lim = r["limited"]
        print(
            f"{lim['calls']} calls under max_concurrent={lim['limit']}: max in flight {lim['max_in_flight']}, "
            f"wall {lim['wall_ms']} ms  {'OK' if lim['ok'] else 'EXCEEDED'}"
        )
        print(f"toolset overhead: {r['overhead_us_per_call']} us per call (1000 no-op calls in one round)")
    return 0 if all(r[k]["ok"] for k in ("async_tool", "sync_tool", "limited")) else 1


if __name__ == "__main__":
    sys.exit(main())
