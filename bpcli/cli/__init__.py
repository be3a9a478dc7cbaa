"""The ``bpcli`` command: parse, call the library, print. Exit codes: 0 ok, 1 a check failed, 2 bad
input, 74 a file could not be written.

The commands live by group, each a plain function registered with :func:`command`:
:mod:`~bpcli.cli.training` (train), :mod:`~bpcli.cli.sweeps` (sweep), :mod:`~bpcli.cli.evaluation`
(eval), :mod:`~bpcli.cli.runs` (runs, plot, diff), :mod:`~bpcli.cli.specs` (validate, show,
schema, init) and :mod:`~bpcli.cli.gradients` (gradcheck, trace, graph, inspect, bench);
:mod:`~bpcli.cli.render` turns results into tables and lines. No command holds logic a
test would want to call directly: that lives in the library.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import signal
import sys

import typer
from rich.console import Console

from ..engine.memory import keep_freed_memory
from ..engine.threads import limit
from ..errors import CheckFailed, InputError, Interrupted, WriteFailed
from .options import check_all, checks_of

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # help texts show [default: ...] literally
                  help="Train and check neural networks written as YAML specs, with bpcli's own "
                       "NumPy backpropagation.")


class _Console(Console):
    """Rich's console, but a reader that went away (``bpcli eval RUN | head -1``) is told to
    :func:`command` as the BrokenPipeError it is, instead of Rich's own exit code 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


out = _Console(highlight=False, soft_wrap=True)   # results: what a pipe or a file receives
err = _Console(stderr=True, highlight=False, soft_wrap=True)  # messages and progress

SPEC = typer.Argument(..., help="YAML spec file", show_default=False)

_argv = None  # the arguments main() was given, for summary.json's command


def command_line() -> str:
    """The command as typed: main()'s arguments when the CLI ran in-process, else the process's."""
    return " ".join(["bpcli", *(sys.argv[1:] if _argv is None else map(str, _argv))])


def command(fn):
    """Register a command; bad input of any kind becomes one paragraph on stderr and exit code 2.

    This is the one place where errors turn into exit codes: InputError -> 2,
    CheckFailed -> 1, Ctrl-C -> 130, a file that cannot be written (WriteFailed, or an OSError
    that says the disk is full or a file too large) -> 74; usage errors are Typer's (also 2); a
    closed stdout (the reader of a pipe went away) ends the command quietly with 0. Options declared with
    :func:`~bpcli.cli.options.option` are checked here, before the command does any work, and
    a command with a ``threads`` option (:func:`~bpcli.cli.options.threads_option`) runs with its
    BLAS pools limited to it (:func:`bpcli.engine.threads.limit`).
    """
    checks = checks_of(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            kwargs = check_all(checks, kwargs)
            if "threads" not in kwargs:
                result = fn(*args, **kwargs)
            else:
                with limit(kwargs["threads"]):
                    result = fn(*args, **kwargs)
            sys.stdout.flush()  # a reader gone while print()'s buffer waited is told here
            return result
        except BrokenPipeError:
            _stdout_to_devnull()
            raise typer.Exit(0) from None
        except InputError as e:
            for one in e.errors:  # several: each on its own line, in file order, then a count
                print(f"bpcli: error: {one}", file=sys.stderr)
            if len(e.errors) > 1:
                files = {one.file for one in e.errors}   # one spec's, or several pictures'
                where = (f" in {files.pop() or 'the spec'}" if len(files) == 1 else "")
                print(f"bpcli: {len(e.errors)} errors{where}", file=sys.stderr)
            raise typer.Exit(2) from None
        except CheckFailed as e:
            print(f"bpcli: {e}", file=sys.stderr)
            raise typer.Exit(1) from None
        except Interrupted as e:
            print(f"bpcli: {e}", file=sys.stderr)
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            print("bpcli: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except WriteFailed as e:
            print(f"bpcli: error: {e}", file=sys.stderr)
            raise typer.Exit(74) from None
        except OSError as e:
            if not _a_write(e):
                raise
            print(f"bpcli: error: {WriteFailed(_shown(e.filename), e)}", file=sys.stderr)
            raise typer.Exit(74) from None
        except MemoryError:
            print("bpcli: error: out of memory: the spec's layers or the data are too large for "
                  "this machine (see bpcli inspect SPEC for sizes)", file=sys.stderr)
            raise typer.Exit(2) from None
    return app.command(fn.__name__.rstrip("_"))(wrapper)


def _a_write(e: OSError) -> bool:
    """Whether an OSError that reached the top is a write the disk refused: no space, a file
    too large, a quota, a read-only file system; or no permission on a file that is not an
    unreadable input."""
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS):
        return True
    return (e.errno in (errno.EACCES, errno.EPERM) and e.filename is not None
            and not (os.path.exists(e.filename) and not os.access(e.filename, os.R_OK)))


def _shown(filename) -> str:
    """The file a write was for: a temporary file (``.loss.png.tmp``, ``.x.1234.ab12cd34.tmp``)
    stands for the file it becomes."""
    if filename is None:
        return "a file"
    name = os.path.basename(str(filename))
    real = re.sub(r"^\.(.+?)(\.\d+\.[0-9a-f]{8})?\.tmp$", r"\1", name)
    return os.path.join(os.path.dirname(str(filename)), real)


def _stdout_to_devnull() -> None:
    """Python's recipe for a closed stdout (library/signal.html, "Note on SIGPIPE"): point it
    at devnull, so that the interpreter's final flush of what is left in its buffer does not fail
    again. A stdout without a file descriptor (a test's capture) is left as it is."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _terminated(signum, frame):
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: cleanups run, exit 130, "bpcli: interrupted"


def main(argv=None) -> int:
    """Run the CLI on ``argv`` (default: the command line) and return its exit code.

    SIGTERM (a job scheduler's stop, ``kill``) is taken as Ctrl-C for the command's whole life,
    not only while training (where both stop at a step and save): Python's default would end
    the process on the spot, skipping the cleanups of temporary files and the exit message.
    """
    global _argv
    _argv = None if argv is None else list(argv)
    keep_freed_memory()  # a training step's big temporaries reuse the heap (engine/memory.py)
    try:
        old = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: signals are the caller's business
        old = None
    try:
        app(args=argv, prog_name="bpcli")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return 0


def run() -> None:
    sys.exit(main())


# the command groups register themselves with app when imported, in the order --help lists them
from . import training, evaluation, sweeps, runs, specs, gradients, exporting  # noqa: E402,F401,I001
