"""ELMo (Peters et al. 2018): contextual word vectors from the published biLM models.

    import embtk
    lm = embtk.load_elmo("options.json", weights="weights.hdf5")
    lm.save("lm.elmo")                      # later: embtk.load_elmo("lm.elmo")
    lm.embed(["the bank of the river"], layer="average")

Modules, in reading order: options (options.json), weights (weights.hdf5 and the .elmo
file), charcnn (the token encoder), lstm (the biLM), model (ElmoModel).
"""

from .model import MAX_SENTENCE_TOKENS, ElmoModel, load_elmo, mix

__all__ = ["ElmoModel", "load_elmo", "mix", "MAX_SENTENCE_TOKENS"]
