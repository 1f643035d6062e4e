#!/bin/sh
# embtk's main jobs on small real text (public-domain books), end to end:
# a classifier that tells the Bible, Austen, Melville and Shakespeare apart,
# then word vectors with subword information and their nearest neighbours.
#
# Sizes fit an example: -bucket 200000 (fastText's default, 2M hash buckets for n-grams,
# makes a 400 MB classifier and an 800 MB skipgram model here; see README.md, "Model size").
# The files go to $TMPDIR/embtk-quickstart (or /tmp/embtk-quickstart): about 160 MB.
set -e
cd "$(dirname "$0")"
out="${TMPDIR:-/tmp}/embtk-quickstart"
mkdir -p "$out"
echo "== writing the models to $out"

echo "== supervised: which book is this line from?"
embtk supervised -input authors.train -output "$out/authors" -epoch 10 -lr 0.5 -wordNgrams 2 \
      -dim 50 -bucket 200000
embtk test "$out/authors.bin" authors.test
printf '%s\n' "Call me Ishmael, and set the sails for the whale." \
              "It is a truth universally acknowledged that a single man must want a wife." \
              "And God said unto Moses, let my people go." |
  embtk predict-prob "$out/authors.bin" - 2

echo "== skipgram: word vectors from Austen and Melville"
embtk skipgram -input austen_melville.txt -output "$out/books" -dim 100 -epoch 5 -bucket 200000
for word in sister whale captain happiness; do
  echo "-- nearest neighbours of '$word' (cosine similarity):"
  # nn prompts for each query ("Query word? ", as fastText): only the answers are shown
  echo "$word" | embtk nn "$out/books.bin" 5 | sed 's/^Query word? //'
  echo
done

echo "== done: $(du -sh "$out" | cut -f1) in $out (delete it when done:"
echo "   rm -r '$out')"
