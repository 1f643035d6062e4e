"""What a command needs from the shell, apart from what it does: bytes on stdin and stdout,
click's options built from the options dataclasses, signals that end a run as Ctrl-C does,
and every error as one line on stderr with fastText-like exit statuses.

Like `cli`, it imports nothing numerical at load time, so that `embtk --help` is instant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys

import click

from .args import FASTTEXT_OPTIONS, Args, cli_options
from .errors import EmbtkError, one_line
from .safeio import open_for_reading

_EXIT_INTERRUPTED = 130
# Signals that end a run as Ctrl-C does (temporary files removed), with status 128 + number.
_TERMINATING = ("SIGTERM", "SIGHUP")
_EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a C tool killed by the signal reports


# ----------------------------------------------------------------------------- output
def stdout():
    if sys.stdout is None:  # started with `>&-`
        raise EmbtkError("standard output is closed: nothing can be printed")
    return getattr(sys.stdout, "buffer", sys.stdout)


def stdin():
    if sys.stdin is None:  # started with `<&-`
        raise EmbtkError("standard input is closed: there is nothing to read")
    return getattr(sys.stdin, "buffer", sys.stdin)


def as_bytes(value) -> bytes:
    """Words and labels as bytes: the API gives bytes or str (str is written as UTF-8)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", errors="surrogateescape")


# The API's on_unicode_error for words the CLI writes: `as_bytes` turns them back into the
# dictionary's own bytes, which fastText writes as they are.
AS_BYTES = "surrogateescape"


def word_arg(raw: bytes):
    """A word read from stdin or argv for the str-based API: str when it is valid UTF-8,
    the raw bytes otherwise (the model encodes str as UTF-8 and accepts bytes as-is)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def vector_text(vec) -> bytes:
    """fastText's `operator<<` for a Vector: 5 significant digits, each value followed
    by a space (so lines have a trailing space)."""
    return "".join(["%.5g " % x for x in vec.tolist()]).encode("ascii")


def number(x) -> str:
    """A float as C++ streams print it by default (6 significant digits, %g)."""
    return "%g" % x


def write_pieces(out, lines, piece: int = 1 << 15):
    """Write many lines in pieces of about `piece` bytes. One huge write into a pipe whose
    reader has gone can end without an error (a partial write), which would hide the
    broken pipe; small writes report it."""
    start, size = 0, 0
    for i, line in enumerate(lines):
        size += len(line)
        if size >= piece:
            out.write(b"".join(lines[start:i + 1]))
            start, size = i + 1, 0
    out.write(b"".join(lines[start:]))


def words_from(stream, piece: int = 1 << 16):
    """Whitespace-separated words (bytes) of a binary stream, read line by line so that
    answers can be given while a pipe is still open, and at most `piece` bytes at a time
    so that memory does not grow with the length of a line. Yields None after each line."""
    carry = b""  # a word cut by the end of a piece
    in_line = False  # a line has begun and not ended
    while True:
        data = stream.readline(piece)
        if not data:
            if carry:
                yield carry
            if in_line:
                yield None
            return
        data = carry + data
        words = data.split()
        carry = words.pop() if words and not data[-1:].isspace() else b""
        yield from words
        in_line = not data.endswith(b"\n")
        if not in_line:
            yield None


def open_data(path: str, what: str):
    if path == "-":
        return stdin()
    return open_for_reading(path, what)


def start_numba() -> None:
    """Bring numba's CPU target up with SciPy's linear algebra hidden from it.

    With SciPy installed, numba's first compilation or cache load imports scipy.linalg
    (0.15-0.25 s, a fifth of a small `embtk predict`) only to decide how np.correlate and
    np.convolve are compiled; no embtk kernel uses them. np.dot would still find BLAS:
    numba imports it again when it compiles one."""
    if "numba.np.arraymath" in sys.modules:  # the target is up already
        return

    class HideLinalg:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "scipy.linalg" or name.startswith("scipy.linalg."):
                raise ModuleNotFoundError(name)
            return None

    hide = HideLinalg()
    sys.meta_path.insert(0, hide)
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        sys.meta_path.remove(hide)


# ----------------------------------------------------------------------------- group
class Command(click.Command):
    """Reports an unknown option as typed (click would call `-foo` `-f`), suggesting
    the known spellings that look like it."""

    def parse_args(self, ctx, args):
        given = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            params = self.get_params(ctx)
            known = [o for p in params for o in getattr(p, "opts", [])]
            shown = [o for p in params if not getattr(p, "hidden", False)
                     for o in getattr(p, "opts", [])]
            for arg in given:
                name = arg.split("=", 1)[0]
                if name == e.option_name or (name.startswith(e.option_name) and len(name) > 2
                                             and not name.startswith("--")):
                    if name in known:
                        continue
                    dashes = "--" if name.startswith("--") else "-"
                    alike = [o for o in shown if o.startswith(dashes)
                             and (dashes == "--" or not o.startswith("--"))]
                    raise click.NoSuchOption(name, ctx=ctx, possibilities=alike) from None
            raise


class OrderedGroup(click.Group):
    """Lists the commands in fastText's order rather than alphabetically."""

    command_class = Command

    def list_commands(self, ctx):
        return list(self.commands)


CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}
POSITIONAL_CONTEXT = dict(CONTEXT, ignore_unknown_options=True)  # so `-1` can be a K
_CLICK_TYPES = {"int": int, "float": float, "str": str}  # an options field's type, in click


def _click_option(name, f, default):
    """The click option of one options-dataclass field: spelled -name and --name (or its
    `flag_name`), its type from the field, its default shown in --help."""
    meta = f.metadata
    flag = meta.get("flag_name", name)
    dest = "input_" if name == "input" else name
    kw = {"help": meta["help"], "show_default": meta.get("show_default", True)}
    if meta.get("required"):
        kw.update(required=True, show_default=False)
    else:
        kw["default"] = default
    if "metavar" in meta:
        kw["metavar"] = meta["metavar"]
    if "negative" in meta:  # a pair of flags, e.g. -symmetric/-asymmetric
        no = meta["negative"]
        return click.option(f"-{flag}/-{no}", f"--{flag}/--{no}", dest, **kw)
    if f.type == "bool":
        kw.update(is_flag=True, show_default=False)
    elif "choices" in meta:
        kw["type"] = click.Choice(meta["choices"])
    else:
        kw["type"] = _CLICK_TYPES[f.type]
    return click.option(f"-{flag}", f"--{flag}", dest, **kw)


def _ignored_option(name, f, command_name):
    """A fastText option that has no effect on this command: taken (its value checked as
    the option's type) with one warning line, and not shown in --help."""
    flag = f.metadata.get("flag_name", name)

    def warn(ctx, param, value):
        if ctx.get_parameter_source(param.name) != click.core.ParameterSource.DEFAULT:
            click.echo(f"embtk: warning: -{flag} has no effect on {command_name}", err=True)

    kw = {"hidden": True, "expose_value": False, "callback": warn}
    if f.type == "bool":
        kw["is_flag"] = True
    else:
        kw["type"] = _CLICK_TYPES[f.type]
    return click.option(f"-{flag}", f"--{flag}", f"ignored_{name}", **kw)


def options_of(options_class, mode: str = "", command_name: str = ""):
    """Decorate a command with the options of an options dataclass (args.cli_options).
    With `command_name`, fastText's other options are taken too, as fastText takes them on
    every command, each with a warning that it has no effect there."""
    def decorate(command):
        options = cli_options(options_class, mode)
        for name, f, default in reversed(options):
            command = _click_option(name, f, default)(command)
        if command_name:
            taken = {name for name, _, _ in options}
            fields = {f.name: f for f in dataclasses.fields(Args)}
            for name in FASTTEXT_OPTIONS:
                if name not in taken:
                    command = _ignored_option(name, fields[name], command_name)(command)
        return command

    return decorate


def given(ctx, options: dict) -> dict:
    """The options the user typed (the defaults stay the options class's own)."""
    return {("input" if name == "input_" else name): value for name, value in options.items()
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}


# ----------------------------------------------------------------------------- main
def _debugging() -> bool:
    return os.environ.get("EMBTK_DEBUG", "") not in ("", "0")


def _silence_stdout():
    """After a broken pipe, point stdout at /dev/null so that the final flush at exit
    does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (removing temporary files on the way) and exit.
    A BaseException, like KeyboardInterrupt, so that no `except Exception` stops it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _terminating_signals_raise():
    """While the command runs, SIGTERM and SIGHUP raise Terminated in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in _TERMINATING:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _raise_terminated)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run(group: click.Group, args: list) -> int:
    """Run a command of `group`; returns the exit status.

    All error reporting lives here: a user error (EmbtkError) is one line on stderr and
    status 1, a usage error one line and status 2, Ctrl-C is status 130 (SIGTERM 143 and
    SIGHUP 129, temporary files removed as for Ctrl-C), a
    closed stdout (`| head`) ends quietly, and anything else is reported as an internal
    error in one line unless EMBTK_DEBUG=1 asks for the traceback.
    """
    try:
        try:
            with _terminating_signals_raise(), group.make_context("embtk", args) as ctx:
                group.invoke(ctx)
        finally:
            # What was written must reach the pipe (a closed one is reported below).
            if sys.stdout is not None:
                sys.stdout.flush()
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `embtk`: the help is the answer
            e.show()
            return 0
        where = e.ctx.command_path if e.ctx is not None else "embtk"
        click.echo(f"embtk: error: {one_line(e.format_message())} (see '{where} --help')",
                   err=True)
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"embtk: error: {one_line(e.format_message())}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("embtk: interrupted", err=True)
        return _EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("embtk: interrupted", err=True)
        return _EXIT_INTERRUPTED
    except Terminated as e:
        import signal

        click.echo(f"embtk: stopped by {signal.Signals(e.signum).name}", err=True)
        return 128 + e.signum
    except BrokenPipeError:
        _silence_stdout()
        return _EXIT_BROKEN_PIPE
    except EmbtkError as e:
        click.echo(f"embtk: error: {one_line(e)}", err=True)
        return 1
    except OSError as e:
        # A file the user named could not be read or written: their problem, not ours.
        if _debugging():
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        click.echo(f"embtk: error: {where}{e.strerror or one_line(e)}", err=True)
        return 1
    except Exception as e:
        if _debugging():
            raise
        click.echo(f"embtk: internal error: {type(e).__name__}: {one_line(e)} "
                   "(set EMBTK_DEBUG=1 for a traceback)", err=True)
        return 1

