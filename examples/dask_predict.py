"""embtk on a Dask cluster: a classifier's predictions over a Bag and a Series of lines.

    pip install 'embtk[dask]'        # dask, distributed, and pandas for the Series
    python examples/dask_predict.py  # about 15 s: starts a local cluster of 2 workers

Trains the quickstart's classifier (which book is a line from?) with small sizes, saves it,
then predicts the labels of the test lines on the workers. The model goes to the workers
as its path: each worker loads the file once and keeps it for all its tasks.
"""

import os
import sys
import tempfile
from pathlib import Path

import dask.bag as db
import dask.dataframe as dd
import pandas as pd
from distributed import Client

import embtk
import embtk.dask

HERE = Path(__file__).resolve().parent


def main(folder: str) -> None:
    model_path = os.path.join(folder, "authors.bin")
    model = embtk.train_supervised(str(HERE / "authors.train"), epoch=10, lr=0.5, wordNgrams=2,
                                   dim=20, bucket=20000, thread=1, verbose=0)
    model.save_model(model_path)
    print(f"model: {model_path} ({os.path.getsize(model_path) // 1000} kB)")

    # Without the `if __name__ == "__main__":` guard below, Client() would start its worker
    # processes by importing this script again, which starts a cluster again...
    with Client(n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        lines = db.read_text(str(HERE / "authors.test"), blocksize=100_000).map(str.rstrip)
        gold = lines.map(lambda line: line.split(" ", 1)[0])
        text = lines.map(lambda line: line.split(" ", 1)[1])
        predicted = embtk.dask.predict(text, model_path, k=1)   # a Bag of (labels, probs)
        pairs = db.zip(gold, predicted).compute()
        right = sum(labels[0] == g for g, (labels, _) in pairs)
        print(f"bag: {len(pairs)} lines in {lines.npartitions} partitions, "
              f"accuracy {right / len(pairs):.3f}")

        series = dd.from_pandas(pd.Series([
            "Call me Ishmael, and set the sails for the whale.",
            "It is a truth universally acknowledged that a single man must want a wife.",
            "And God said unto Moses, let my people go."]), npartitions=2)
        for line, (labels, probs) in zip(series.compute(),
                                         embtk.dask.predict(series, model_path).compute()):
            print(f"series: {labels[0]} {probs[0]:.2f}  {line}")

        vectors = embtk.dask.sentence_vectors(text, model_path)  # a dask Array
        print(f"sentence vectors: {vectors.compute().shape}")
        loads = sorted(info["loads"] for info in client.run(embtk.dask.cache_info).values())
        print(f"workers: {len(loads)}, model loads on each: {loads}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="embtk-dask-example-") as work:
        main(sys.argv[1] if len(sys.argv) > 1 else work)
