"""The one exception type users see: its message is meant to be printed as-is."""


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
