"""Compiled programs and their cache: one pair (chunk, evaluate) per program key,
shared by every cohort of that shape, at most ``MAX_PROGRAMS`` kept (oldest dropped)."""

from __future__ import annotations

import threading


class Program:
    """A jitted function shared by every cohort of one shape. Its first call (trace and
    compile) holds a lock, so lanes training side by side compile it once; ``ahead``
    compiles it in a background thread instead, so that the step does not wait for the
    metrics program. ``layout``: what ``_pack`` recorded while tracing, if the function
    packs its outputs."""

    def __init__(self, fn, **jit_options):
        import jax

        self.fn, self.lock, self.ready = jax.jit(fn, **jit_options), threading.Lock(), False
        self.layout = getattr(fn, "layout", None)
        self._compiled = None  # a Future of the ahead-of-time compiled program

    def ahead(self, *args, pool=None) -> None:
        """Trace and compile for ``args``' shapes in a background thread (``pool``, an
        executor, or the shared compile thread; XLA's compile releases the GIL and is
        thread-safe); the next call waits for it."""
        with self.lock:
            if self.ready or self._compiled is not None:
                return
            pool = pool or compile_thread()
            self._compiled = pool.submit(lambda: self.fn.lower(*args).compile())

    def compiling(self) -> bool:
        """Whether an ahead-of-time compile is still running."""
        future = self._compiled
        return future is not None and not future.done()

    def __call__(self, *args):
        if self.ready:
            return self.fn(*args)
        with self.lock:
            if self._compiled is not None:
                try:
                    out = self._compiled.result()(*args)
                except TypeError:  # arguments of other shapes than compiled for
                    out = self.fn(*args)
                self._compiled = None
            else:
                out = self.fn(*args)
            self.ready = True
        return out


_THREADS: dict = {}  # name -> a one-thread executor for ahead-of-time compiles


def compile_thread(name: str = "bncli-compile"):
    """The one worker thread named ``name`` for ahead-of-time compiles (started on first
    use): the default is shared by every program's ``ahead``; ``compile_ahead`` uses its
    own, so that the next shape's compiles do not queue behind the current one's."""
    from concurrent.futures import ThreadPoolExecutor

    with _PROGRAMS_LOCK:
        if name not in _THREADS:
            _THREADS[name] = ThreadPoolExecutor(1, thread_name_prefix=name)
        return _THREADS[name]


_PROGRAMS: dict[str, tuple[Program, Program]] = {}  # oldest first
MAX_PROGRAMS = 16
_PROGRAMS_LOCK = threading.Lock()


def cached(key: str, make) -> tuple[Program, Program]:
    """The programs of ``key``, made by ``make()`` on first use; cohorts starting
    together (CPU lanes, device threads) share one pair."""
    with _PROGRAMS_LOCK:
        if key not in _PROGRAMS:
            while len(_PROGRAMS) >= MAX_PROGRAMS:  # a long sweep of many shapes
                _PROGRAMS.pop(next(iter(_PROGRAMS)))
            _PROGRAMS[key] = make()
        return _PROGRAMS[key]


def forget_programs() -> None:
    """Drop every cached program (the next cohort traces and compiles again)."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()
