"""ELMo (Peters et al. 2018): contextual word vectors from the published biLM models.

    import embtk
    lm = embtk.load_elmo("options.json", weights="weights.hdf5")
    lm.save("lm.elmo")                      # later: embtk.load_elmo("lm.elmo")
    lm.embed(["the bank of the river"], layer="average")
    lm = embtk.train_elmo("corpus.txt", epoch=1)   # a biLM of your own
    lm.perplexity("held_out.txt")                   # forward, backward, mean

Modules, in reading order: options (options.json), weights (weights.hdf5 and the .elmo
file), charcnn (the token encoder), lstm (the biLM), softmax (the output layer), bilm
(training's text and windows), model (ElmoModel), training (train_elmo).
"""

from .model import MAX_SENTENCE_TOKENS, ElmoModel, Perplexity, load_elmo, mix
from .training import train_elmo

__all__ = ["ElmoModel", "load_elmo", "mix", "MAX_SENTENCE_TOKENS", "Perplexity", "train_elmo"]
