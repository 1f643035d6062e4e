"""The one exception type users see (its message is meant to be printed as-is), and the
progress bars they watch on stderr."""


class EmbtkError(ValueError):
    """A problem with the user's input, options or files, explained in one line.

    A ValueError, like the errors of the official fasttext module, so ported code that
    catches those keeps working.
    """


class UnknownWordWarning(UserWarning):
    """A word-vector model without subword information was asked for a word it does not
    know: the vector returned is all zeros, not a learnt one."""


def one_line(e: BaseException) -> str:
    """An error's message on one line, as the commands print it."""
    return " ".join(str(e).split()) or type(e).__name__


# A progress bar is what a user sees on stderr besides errors and summary lines.
# A terminal that reports a width of 0 columns gets a bar this wide: room for the training
# line's words/sec, lr, loss and ETA (about 95 characters) and a bar.
FALLBACK_COLUMNS = 120


def progress_bar(**options):
    """A tqdm bar on stderr that follows the terminal's width, or is FALLBACK_COLUMNS wide
    where the terminal reports 0 columns (tqdm would then drop the bar and its format:
    seen on a 45 s run with no bar at all). Not a terminal: tqdm's own default."""
    import os
    import sys

    from tqdm import tqdm

    options = {"file": sys.stderr, "mininterval": 0.5, **options}
    try:
        columns = os.get_terminal_size(options["file"].fileno()).columns
    except (AttributeError, ValueError, OSError):  # not a terminal, or no file descriptor
        columns = None
    if columns == 0:
        return tqdm(ncols=FALLBACK_COLUMNS, **options)
    return tqdm(dynamic_ncols=True, **options)
