"""Run the benchmarks: `python -m tests.bench [name ...]` (make bench).

Each `tests/bench/bench_<name>.py` is a script with its own setup (a throwaway
database, a server, a worker); it runs in its own process and prints its figures.
Everything printed is also appended to var/bench/results.txt.
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def main(argv: list[str]) -> int:
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    chosen = argv or available
    unknown = set(chosen) - set(available)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
              f"available: {', '.join(available)}")  # fmt: skip
        return 2
    results = ROOT / "var" / "bench" / "results.txt"
    results.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in chosen:
        header = f"== bench {name} ({time.strftime('%Y-%m-%d %H:%M:%S')})"
        print(header, flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", f"tests.bench.bench_{name}"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-5000:] if proc.returncode else "")
        with results.open("a") as out:
            out.write(header + "\n" + proc.stdout + "\n")
        failed += proc.returncode != 0
    print(f"results appended to {results.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
