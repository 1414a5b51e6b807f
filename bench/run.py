"""bncli benchmarks -> BENCHMARKS.md.

    .venv/bin/python bench/run.py --out BENCHMARKS.md          # everything (~15 min)
    .venv/bin/python bench/run.py --quick --out /tmp/bench.md  # smoke run, tiny sizes
    .venv/bin/python bench/run.py --only step,flops   # updates only those sections of --out

Every figure is a ratio measured side by side in this one run (the machine is shared
and noisy); see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Single-threaded OpenBLAS before NumPy/JAX/torch load (multi-threaded OpenBLAS stalls on
# this shared machine); subprocesses inherit it.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from benchmarks import BENCHMARKS, Opts  # noqa: E402
from results import Section, load_average, render  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="BENCHMARKS.md", help="Markdown file to write.")
    p.add_argument("--quick", action="store_true", help="Tiny sizes: a smoke run in < 2 min.")
    p.add_argument("--only", default="", help=f"Comma-separated subset of {','.join(BENCHMARKS)}.")
    args = p.parse_args(argv)
    args.names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    os.chdir(HERE.parent)
    # The bench process itself never uses a persistent compilation cache; subprocesses get
    # their own (empty) folders where a benchmark says so.
    os.environ["BNCLI_JAX_CACHE"] = ""
    load_start, t0 = load_average(), time.perf_counter()
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="bncli-bench-") as tmp:
        opts = Opts(quick=args.quick, tmp=Path(tmp))
        for name in args.names:
            print(f"[bench] {name} ...", flush=True)
            t = time.perf_counter()
            try:
                sec = BENCHMARKS[name](opts)
            except Exception as exc:  # noqa: BLE001 - one failed benchmark must not stop the rest
                traceback.print_exc()
                lines = str(exc).strip().splitlines()
                sec = Section(name, "failed", "", error=f"{type(exc).__name__}: "
                              f"{lines[0] if lines else ''}"[:400])
            sec.seconds = time.perf_counter() - t
            sec.notes.append(f"load average (1/5/15 min) at the end of this benchmark: "
                             f"{load_average()}")
            sections.append(sec)
            for tg in sec.targets:
                print(f"[bench]   {tg.status:4s} {tg.name}: {tg.fmt(tg.value)} "
                      f"(target {tg.op} {tg.fmt(tg.threshold)})", flush=True)
            print(f"[bench]   done in {sec.seconds:.0f} s", flush=True)
    cmd = ["python", "bench/run.py"] + (sys.argv[1:] if argv is None else argv)
    text = render(sections, cmd, args.quick, load_start,
                  "OPENBLAS_NUM_THREADS=1; torch.set_num_threads(2); JAX CPU defaults",
                  time.perf_counter() - t0)
    out = Path(args.out)
    if args.only and out.exists() and not args.quick:  # keep the other benchmarks' sections
        from partial import merge

        note = (f"Sections {', '.join(f'`{n}`' for n in args.names)} regenerated "
                f"{time.strftime('%Y-%m-%d %H:%M')} by `{' '.join(cmd)}` (load average at "
                f"start {load_start}, at end {load_average()}); the others are from the run "
                "above.")
        text = merge(out.read_text(), text, args.names, note)
    out.write_text(text)
    print(f"[bench] wrote {args.out}", flush=True)
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
