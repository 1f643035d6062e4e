#!/usr/bin/env python
"""First-run cost: the embtk commands of a shell script, cold (empty numba cache) then warm.

A fresh install has an empty numba cache, so its first commands compile the kernels they
use; later runs load them. This runs every `embtk` command of the script (by default the
README's first run, examples/quickstart.sh) in order, each in a fresh process, from an
empty temporary NUMBA_CACHE_DIR (cold: each command compiles what the ones before it have
not), then all again on the filled cache (warm). cold - warm is what compiling costs.

    python benchmarks/first_run.py                     # examples/quickstart.sh, once
    python benchmarks/first_run.py --reps 3 --top 15   # medians of 3, slowest compiles
    python benchmarks/first_run.py --script my.sh --json out.json

Wall seconds are disturbed by other load on the machine; CPU seconds (user + sys of the
command's processes) much less, since compiling uses one core. Compiling is user time:
the table splits the CPU difference into user and system seconds. Each command starts
`--settle` seconds after the one before (default 10): on a VM whose host takes freed
memory back, a command started at once reuses the memory the last one freed and faults
its pages in several times faster. Measured here, the quickstart's first command warm:
4.7 s wall (2.8 s system) right after the cold run, 7.1-8.4 s (5.5-6.5 s system) after a
10 s pause, the same user time; without the pause cold - warm counts that as compiling.
`--top N` lists the functions numba compiled, by their own compile time (callees'
compiles not included), from the first repetition's cold pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SCRIPT = HERE.parent / "examples" / "quickstart.sh"

# The `embtk` the script calls: this Python's embtk (PYTHONPATH is honoured). With
# FIRST_RUN_EVENTS set, each numba compile is appended to that file as one JSON line.
SHIM = """#!{python}
import os
import sys

if os.environ.get("FIRST_RUN_EVENTS"):
    import json
    import time

    import numba.core.event as event

    class Recorder(event.Listener):
        def __init__(self):
            self.stack = []

        def on_start(self, ev):
            self.stack.append([time.perf_counter(), 0.0])

        def on_end(self, ev):
            started, inner = self.stack.pop()
            took = time.perf_counter() - started
            if self.stack:
                self.stack[-1][1] += took
            fn = ev.data["dispatcher"].py_func
            with open(os.environ["FIRST_RUN_EVENTS"], "a") as out:
                out.write(json.dumps(dict(function=f"{{fn.__module__}}.{{fn.__qualname__}}",
                                          signature=str(ev.data["args"]),
                                          seconds=took - inner)) + "\\n")

    event.register("numba:compile", Recorder())

from embtk.cli import main

sys.exit(main())
"""


def statements(script: str) -> list[str]:
    """The script's shell statements, a line ending in a backslash or a pipe joined to the next."""
    out, pending = [], ""
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        stripped = line.rstrip()
        if stripped.endswith("\\") or stripped.endswith("|"):
            continue
        out.append(pending.rstrip("\n"))
        pending = ""
    if pending:
        out.append(pending.rstrip("\n"))
    return out


def is_step(statement: str) -> bool:
    """A statement that runs embtk (alone, or at the end of a pipe)."""
    return re.search(r"(^|[|;]\s*|\n\s*)embtk\s", statement) is not None


def split_script(script: str):
    """(set-up statements before the first embtk command, the embtk statements)."""
    parts = statements(script)
    steps = [s for s in parts if is_step(s)]
    if not steps:
        raise SystemExit("first_run.py: error: the script runs no embtk command")
    setup = parts[: parts.index(steps[0])]
    return setup, steps


def short_name(step: str) -> str:
    """The embtk command of a step, on one line, for the table."""
    line = re.sub(r"\s*\\\n\s*", " ", step).split("\n")[-1]
    command = line[line.index("embtk"):] if "embtk" in line else line
    return " ".join(command.split())


def run_step(setup, step, script_path, env, settle: float):
    """Run one step in sh, `settle` seconds from now; returns (wall seconds, CPU seconds
    of its processes, of which user seconds)."""
    time.sleep(settle)
    code = "\n".join([*setup, step])
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(["sh", "-c", code, str(script_path)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"first_run.py: error: step failed ({done.returncode}): "
                         f"{short_name(step)}\n{done.stderr.strip()[-2000:]}")
    user = after.children_user - before.children_user
    return wall, user + after.children_system - before.children_system, user


def one_repetition(setup, steps, script_path, work: Path, record: bool, settle: float):
    """Cold then warm pass over the steps: {"cold": [(wall, cpu, user)...], "warm": [...],
    "compiles": [[events of step 1], ...]}."""
    cache = work / "numba-cache"
    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "embtk"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), TMPDIR=str(work),
               PATH=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    env.pop("FIRST_RUN_EVENTS", None)
    result = {"cold": [], "warm": [], "compiles": []}
    for phase in ("cold", "warm"):
        for i, step in enumerate(steps):
            events = work / f"events-{phase}-{i}.jsonl"
            step_env = dict(env, FIRST_RUN_EVENTS=str(events)) if record else env
            result[phase].append(run_step(setup, step, script_path, step_env, settle))
            if record:
                found = events.read_text().splitlines() if events.exists() else []
                if phase == "cold":
                    result["compiles"].append([json.loads(line) for line in found])
                result.setdefault(f"{phase}_compile_count", []).append(len(found))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default=str(DEFAULT_SCRIPT),
                        help="a shell script whose embtk commands are timed "
                             "(default: examples/quickstart.sh)")
    parser.add_argument("--reps", type=int, default=1,
                        help="cold + warm passes, each from a new empty cache; medians shown")
    parser.add_argument("--top", type=int, default=0,
                        help="also list the N functions that took longest to compile")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds to wait before each command (see above; default 10)")
    parser.add_argument("--json", help="also write every measurement to this file")
    opts = parser.parse_args()
    script_path = Path(opts.script).resolve()
    if not script_path.is_file():
        raise SystemExit(f"first_run.py: error: no script {script_path}")
    setup, steps = split_script(script_path.read_text())
    reps = []
    for rep in range(max(1, opts.reps)):
        with tempfile.TemporaryDirectory(prefix="embtk-first-run-") as work:
            reps.append(one_repetition(setup, steps, script_path, Path(work),
                                       record=opts.top > 0 and rep == 0,
                                       settle=opts.settle))

    rows = []
    for i, step in enumerate(steps):
        row = {"command": short_name(step)}
        for phase in ("cold", "warm"):
            for k, what in enumerate(("wall", "cpu", "user")):
                row[f"{phase}_{what}"] = statistics.median(r[phase][i][k] for r in reps)
        rows.append(row)
    total = {"command": "total"}
    for key in ("cold_wall", "cold_cpu", "cold_user", "warm_wall", "warm_cpu", "warm_user"):
        phase, what = key.split("_")
        k = ("wall", "cpu", "user").index(what)
        total[key] = statistics.median(sum(r[phase][i][k] for i in range(len(steps)))
                                       for r in reps)

    print(f"{script_path.name}: {len(steps)} embtk commands, {len(reps)} cold + warm "
          f"pass(es), medians; seconds\n")
    print("| command | cold wall | warm wall | cold-warm wall | cold CPU | warm CPU "
          "| cold-warm CPU | of it user | of it system |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in [*rows, total]:
        name = row["command"] if row is total else f"`{row['command']}`"
        print(f"| {name} | {row['cold_wall']:.2f} | {row['warm_wall']:.2f} | "
              f"{row['cold_wall'] - row['warm_wall']:.2f} | {row['cold_cpu']:.2f} | "
              f"{row['warm_cpu']:.2f} | {row['cold_cpu'] - row['warm_cpu']:.2f} | "
              f"{row['cold_user'] - row['warm_user']:.2f} | "
              f"{row['cold_cpu'] - row['cold_user'] - row['warm_cpu'] + row['warm_user']:.2f} |")

    report = {"script": str(script_path), "reps": reps, "rows": rows, "total": total}
    if opts.top > 0:
        first = reps[0]
        per_function = defaultdict(lambda: [0.0, 0, set()])
        for i, events in enumerate(first["compiles"]):
            for e in events:
                entry = per_function[e["function"]]
                entry[0] += e["seconds"]
                entry[1] += 1
                entry[2].add(i + 1)
        print(f"\nnumba compiles, cold pass: {sum(first['cold_compile_count'])} "
              f"(warm pass: {sum(first['warm_compile_count'])}); the {opts.top} slowest, "
              "own seconds (callees excluded)\n")
        print("| function | seconds | compiles | commands |\n|---|---|---|---|")
        ranked = sorted(per_function.items(), key=lambda kv: -kv[1][0])[: opts.top]
        for name, (seconds, count, where) in ranked:
            print(f"| {name} | {seconds:.2f} | {count} | {', '.join(map(str, sorted(where)))} |")
        report["compile_seconds"] = {name: v[0] for name, v in per_function.items()}
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
