"""embtk: word embeddings and fast text classification, compatible with fastText.

    import embtk
    model = embtk.train_supervised("train.txt", epoch=10, wordNgrams=2)
    model.predict("some text to classify")

Submodules load on first use, so `import embtk` (and `embtk --help`) stay fast.
"""

__version__ = "0.1.0"

_API = {"train_supervised", "train_unsupervised", "load_model", "tokenize", "train_glove"}
_API |= {"evaluate_similarity", "evaluate_analogies", "EOS", "BOW", "EOW"}
__all__ = sorted(_API | {"FastText", "EmbtkError", "Args", "load_elmo", "ElmoModel",
                         "train_elmo"})


def __dir__():
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "FastText":
        from .model import FastText

        return FastText
    if name == "EmbtkError":
        from .errors import EmbtkError

        return EmbtkError
    if name in ("load_elmo", "ElmoModel", "train_elmo"):
        from . import elmo

        return getattr(elmo, name)
    if name == "Args":
        from .args import Args

        return Args
    raise AttributeError(f"module 'embtk' has no attribute {name!r}")
