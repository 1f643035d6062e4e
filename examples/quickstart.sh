#!/bin/sh
# embtk's main jobs on small real text (public-domain books), end to end:
# a classifier that tells the Bible, Austen, Melville and Shakespeare apart,
# then word vectors with subword information and their nearest neighbours.
set -e
cd "$(dirname "$0")"
out="${TMPDIR:-/tmp}/embtk-quickstart"
mkdir -p "$out"

echo "== supervised: which book is this line from?"
embtk supervised -input authors.train -output "$out/authors" -epoch 10 -lr 0.5 -wordNgrams 2 -dim 50
embtk test "$out/authors.bin" authors.test
printf '%s\n' "Call me Ishmael, and set the sails for the whale." \
              "It is a truth universally acknowledged that a single man must want a wife." \
              "And God said unto Moses, let my people go." |
  embtk predict-prob "$out/authors.bin" - 2

echo "== skipgram: word vectors from Austen and Melville"
embtk skipgram -input austen_melville.txt -output "$out/books" -dim 100 -epoch 5
for word in sister whale captain happiness; do echo "$word"; done | embtk nn "$out/books.bin" 5
