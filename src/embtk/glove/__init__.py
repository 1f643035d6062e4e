"""GloVe (Pennington, Socher and Manning, 2014): word vectors from co-occurrence counts.

A model family of its own beside fastText's, in reading order: `cooccurrence` counts the
weighted word pairs in bounded memory, `training` fits the vectors with AdaGrad and gives
an ordinary FastText model without subwords.
"""

from .training import GloveInfo, train

__all__ = ["GloveInfo", "train"]
