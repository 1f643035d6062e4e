#!/usr/bin/env python
"""ELMo's contextual vectors: embtk against PyTorch on CPU, same model, same sentences.

    python benchmarks/elmo_speed.py --lines 2000 --large-lines 200

Makes random-weight models in the published layout (options.json + weights.hdf5) for the
two published sizes -- small: 2x1024_128_2048cnn_1xhighway, large:
2x4096_512_2048cnn_2xhighway -- and embeds lines of corpus/en_corpus.txt (taken evenly
across the file) with `ElmoModel.embed` at 1 and 2 threads, and with the same model written
in torch (char CNN, highway, LSTM with projection and clipping, as AllenNLP computes it;
`torch.set_num_threads(n)`, `torch.inference_mode()`), in the same run. Each measurement
runs in its own process (peak memory is its ru_maxrss) after a warm-up batch (numba's
compilation, torch's first calls). Prints tokens/s, embtk / torch, peak memory, the
largest difference between the two tools' vectors, where embtk's time goes at one thread
(token encoder, LSTM products, gates), and the load time of the large model from its
`.elmo` (memory-mapped) and from its `.hdf5`.

torch is an optional benchmark dependency (`pip install torch`, a CPU build); without it
only embtk is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]
SIZES = {
    "small": {"dim": 1024, "projection_dim": 128, "n_highway": 1},
    "large": {"dim": 4096, "projection_dim": 512, "n_highway": 2},
    "tiny": {"dim": 32, "projection_dim": 8, "n_highway": 1, "filters": [[1, 4], [2, 8]]},
}
BATCH = 64       # sentences per batch, both tools
CHUNK = 512      # lines handed to the tools at a time (bounds the memory of the results)
SAMPLE = 16      # sentences whose vectors are compared between the tools


def options_of(size: str) -> dict:
    s = SIZES[size]
    return {"lstm": {"use_skip_connections": True, "projection_dim": s["projection_dim"],
                     "cell_clip": 3, "proj_clip": 3, "dim": s["dim"], "n_layers": 2},
            "char_cnn": {"activation": "relu", "filters": s.get("filters", FILTERS),
                         "n_highway": s["n_highway"], "embedding": {"dim": 16},
                         "n_characters": 262, "max_characters_per_token": 50}}


def make_model(directory: Path, size: str) -> tuple:
    """options.json and weights.hdf5 of random weights in bilm-tf's layout (kept)."""
    import h5py

    options, weights = directory / f"{size}_options.json", directory / f"{size}_weights.hdf5"
    if options.exists() and weights.exists():
        return options, weights
    opt = options_of(size)
    lstm, cnn = opt["lstm"], opt["char_cnn"]
    p, c, d = lstm["projection_dim"], lstm["dim"], 16
    f = sum(n for _, n in cnn["filters"])
    rng = np.random.default_rng(1)

    def r(*shape, scale):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)

    tmp = weights.with_suffix(".tmp")
    with h5py.File(tmp, "w") as h5:
        h5["char_embed"] = r(261, d, scale=1.0)
        for i, (w, n) in enumerate(cnn["filters"]):
            h5[f"CNN/W_cnn_{i}"] = r(1, w, d, n, scale=1 / np.sqrt(w * d))
            h5[f"CNN/b_cnn_{i}"] = r(n, scale=0.1)
        for k in range(cnn["n_highway"]):
            for part in ("carry", "transform"):
                h5[f"CNN_high_{k}/W_{part}"] = r(f, f, scale=1 / np.sqrt(f))
                h5[f"CNN_high_{k}/b_{part}"] = r(f, scale=0.1)
        h5["CNN_proj/W_proj"] = r(f, p, scale=1 / np.sqrt(f))
        h5["CNN_proj/b_proj"] = r(p, scale=0.1)
        for direction in (0, 1):
            for layer in range(lstm["n_layers"]):
                prefix = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
                h5[f"{prefix}/W_0"] = r(2 * p, 4 * c, scale=1 / np.sqrt(2 * p))
                h5[f"{prefix}/B"] = r(4 * c, scale=0.1)
                h5[f"{prefix}/W_P_0"] = r(c, p, scale=1 / np.sqrt(c))
    os.replace(tmp, weights)
    options.write_text(json.dumps(opt))
    return options, weights


def read_lines(corpus: Path, count: int) -> list:
    """`count` non-empty lines taken evenly across the corpus."""
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.split()]
    step = max(1, len(lines) // max(count, 1))
    return lines[::step][:count]


# --------------------------------------------------------------------------- embtk
def embtk_worker(model: str, lines: list, threads: int, profile: bool) -> dict:
    import embtk

    lm = embtk.load_elmo(model)
    lm.embed(lines[:BATCH], thread=threads)  # warm-up: numba's kernels
    timers = _profile(lm) if profile else None
    began = time.perf_counter()
    sample = None
    for i in range(0, len(lines), CHUNK):
        vectors = lm.embed(lines[i:i + CHUNK], thread=threads, batch_size=BATCH)
        if sample is None:
            sample = vectors[:SAMPLE]
    seconds = time.perf_counter() - began
    out = {"seconds": seconds, "sample": sample}
    if timers is not None:
        out["profile"] = {k: v[0] for k, v in timers.items()}
    return out


def _profile(lm) -> dict:
    """Wrap the encoder, the gate kernel and the LSTM layers with clocks (one thread)."""
    from embtk.elmo import charcnn, lstm

    timers = {"token encoder": [0.0], "LSTM gates (numba)": [0.0], "LSTM total": [0.0]}

    def clocked(f, key):
        def wrapper(*args, **kw):
            began = time.perf_counter()
            try:
                return f(*args, **kw)
            finally:
                timers[key][0] += time.perf_counter() - began
        return wrapper

    encoder = lm.encoder
    lm.encoder = clocked(encoder, "token encoder")
    lstm.lstm_cell = clocked(lstm.lstm_cell, "LSTM gates (numba)")
    lstm.LstmLayer.run = clocked(lstm.LstmLayer.run, "LSTM total")
    del charcnn
    return timers


# --------------------------------------------------------------------------- torch
BOS, EOS = "<S>", "</S>"  # the sentence markers, as tokens of token_char_ids


def token_char_ids(token, max_chars: int) -> np.ndarray:
    """(max_chars,) int64: a token's character ids as bilm-tf numbers them, plus one (0 is
    "no token"): begin-of-word, the UTF-8 bytes (cut to max_chars - 2), end-of-word,
    padding; `token` is bytes, or BOS / EOS for the sentence markers."""
    body = [256] if token == BOS else [257] if token == EOS else list(token)[:max_chars - 2]
    ids = np.full(max_chars, 261, dtype=np.int64)
    chars = [258] + body + [259]
    ids[:len(chars)] = np.array(chars) + 1
    return ids


def torch_worker(options: str, weights: str, lines: list, threads: int) -> dict:
    import h5py
    import torch

    torch.set_num_threads(threads)
    opt = json.loads(Path(options).read_text())
    with h5py.File(weights, "r") as h5:
        arrays = {}
        h5.visititems(lambda name, node: arrays.__setitem__(name, torch.from_numpy(node[()]))
                      if isinstance(node, h5py.Dataset) else None)
    model = TorchElmo.from_bilm(opt, arrays)
    with torch.inference_mode():
        model.embed(lines[:BATCH])  # warm-up
        began = time.perf_counter()
        sample = None
        for i in range(0, len(lines), CHUNK):
            vectors = model.embed(lines[i:i + CHUNK])
            if sample is None:
                sample = vectors[:SAMPLE]
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "sample": sample}


class TorchElmo:
    """The published model in torch ops, as AllenNLP runs it: char ids of every token,
    conv1d per width, max-pool, highway, projection; per direction and layer an LSTM
    with projection over batches sorted by length, the batch shrinking as sentences end
    (AllenNLP's LstmCellWithProjection), the input projection of all steps at once."""

    def __init__(self, opt, params):
        """`params`: the tensors in this class's layout (see `from_bilm`); a trainer passes
        leaf tensors that require gradients, and the same ops train them."""
        import torch

        self.torch = torch
        self.opt = opt
        self.max_chars = opt["char_cnn"]["max_characters_per_token"]
        self.act = torch.relu if opt["char_cnn"]["activation"] == "relu" else torch.tanh
        self.char_embed = params["char_embed"]  # (262, D): row 0 is "no token"
        self.convs = params["convs"]            # [(weight (count, D, width), bias)]
        self.highway = params["highway"]        # [(W_carry | W_transform, b_carry | b)]
        self.proj = params["proj"]              # (W (filters, P), b)
        self.lstm = params["lstm"]              # [direction][layer]: (w_x, w_h, bias, w_p)

    @classmethod
    def from_bilm(cls, opt, a):
        """From the arrays of a weights.hdf5 (bilm-tf's names and layout)."""
        import torch

        cnn, lstm = opt["char_cnn"], opt["lstm"]
        p = lstm["projection_dim"]
        cell = "RNN_{}/RNN/MultiRNNCell/Cell{}/LSTMCell/"
        return cls(opt, {
            "char_embed": torch.cat([torch.zeros(1, a["char_embed"].shape[1]), a["char_embed"]]),
            "convs": [(a[f"CNN/W_cnn_{i}"][0].permute(2, 1, 0).contiguous(), a[f"CNN/b_cnn_{i}"])
                      for i in range(len(cnn["filters"]))],
            "highway": [(torch.cat([a[f"CNN_high_{k}/W_carry"], a[f"CNN_high_{k}/W_transform"]],
                                   1), torch.cat([a[f"CNN_high_{k}/b_carry"],
                                                  a[f"CNN_high_{k}/b_transform"]]))
                        for k in range(cnn["n_highway"])],
            "proj": (a["CNN_proj/W_proj"], a["CNN_proj/b_proj"]),
            "lstm": [[(a[cell.format(d, layer) + "W_0"][:p], a[cell.format(d, layer) + "W_0"][p:],
                       a[cell.format(d, layer) + "B"], a[cell.format(d, layer) + "W_P_0"])
                      for layer in range(lstm["n_layers"])] for d in (0, 1)]})

    def char_ids(self, sentence):
        """(tokens + 2, max_chars) int64: <S>, the tokens (str), </S>."""
        return np.stack([token_char_ids(t, self.max_chars)
                         for t in [BOS] + [t.encode("utf-8") for t in sentence] + [EOS]])

    def encode(self, ids):
        torch = self.torch
        x = self.char_embed[ids].transpose(1, 2)  # (tokens, D, chars)
        feats = [self.act(torch.nn.functional.conv1d(x, w, b).max(dim=2).values)
                 for w, b in self.convs]
        x = torch.cat(feats, 1)
        f = x.shape[1]
        for w, b in self.highway:
            both = torch.addmm(b, x, w)
            g = torch.sigmoid(both[:, :f])
            x = g * torch.relu(both[:, f:]) + (1 - g) * x
        return torch.addmm(self.proj[1], x, self.proj[0])

    def run_lstm(self, xs, lengths, w_x, w_h, bias, w_p, state=None):
        """xs (B, T, P) padded, sentences sorted longest first; `state` (c, h) to start from
        (zeros by default). Returns the outputs (B, T, P) and the last (c, h)."""
        torch = self.torch
        lstm = self.opt["lstm"]
        batch, steps, _ = xs.shape
        xw = torch.addmm(bias, xs.reshape(batch * steps, -1), w_x).reshape(batch, steps, -1)
        cells = w_p.shape[0]
        c, h = state if state is not None else (torch.zeros(batch, cells),
                                                torch.zeros(batch, w_p.shape[1]))
        out = torch.zeros(batch, steps, w_p.shape[1])
        for t in range(steps):
            n = int((lengths > t).sum())
            z = xw[:n, t] + h[:n] @ w_h
            i, j, f, o = z.split(cells, dim=1)
            cn = torch.sigmoid(f + 1.0) * c[:n] + torch.sigmoid(i) * torch.tanh(j)
            cn = torch.clamp(cn, -lstm["cell_clip"], lstm["cell_clip"])
            hn = torch.clamp((torch.sigmoid(o) * torch.tanh(cn)) @ w_p,
                             -lstm["proj_clip"], lstm["proj_clip"])
            c = torch.cat([cn, c[n:]]) if n < batch else cn
            h = torch.cat([hn, h[n:]]) if n < batch else hn
            out[:n, t] = hn
        return out, (c, h)

    def embed(self, lines):
        torch = self.torch
        sentences = [line.split() for line in lines]
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        results = [None] * len(sentences)
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            lengths = torch.tensor([len(sentences[i]) + 2 for i in batch])
            steps = int(lengths[0])
            # the char CNN on every token of the batch, boundaries included (AllenNLP also
            # runs it on the padding, which made this baseline 10x slower and 13 GB large)
            ids = torch.from_numpy(np.concatenate([self.char_ids(sentences[i]) for i in batch]))
            encoded = torch.cat([self.encode(ids[k:k + 1024]) for k in range(0, len(ids), 1024)])
            x = torch.zeros(len(batch), steps, encoded.shape[1])
            at = 0
            for b in range(len(batch)):
                x[b, :lengths[b]] = encoded[at:at + lengths[b]]
                at += int(lengths[b])
            rev = torch.zeros_like(x)
            for b in range(len(batch)):
                rev[b, :lengths[b]] = x[b, :lengths[b]].flip(0)
            layers = [(x, rev)]
            for d, seq in ((0, x), (1, rev)):
                inp = seq
                for k, weights in enumerate(self.lstm[d]):
                    h, _ = self.run_lstm(inp, lengths, *weights)
                    if k > 0 and self.opt["lstm"]["use_skip_connections"]:
                        h = h + inp
                    if d == 0:
                        layers.append([h, None])
                    else:
                        layers[k + 1][1] = h
                    inp = h
            for b, i in enumerate(batch):
                n = int(lengths[b])
                per = [torch.cat([fw[b, 1:n - 1], bw[b, :n].flip(0)[1:n - 1]], 1)
                       for fw, bw in layers]
                results[i] = torch.stack(per, 1).numpy()
        return results


# --------------------------------------------------------------------------- driver
def peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    would also count the parent's memory at fork)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_main(args) -> None:
    spec = json.loads(Path(args.worker).read_text())
    lines = spec["lines"]
    if spec["tool"] == "embtk":
        out = embtk_worker(spec["model"], lines, spec["threads"], spec.get("profile", False))
    else:
        out = torch_worker(spec["options"], spec["weights"], lines, spec["threads"])
    np.save(spec["sample"], np.concatenate([s.reshape(-1) for s in out.pop("sample")]))
    out["peak_mb"] = peak_mb()
    print(json.dumps(out))


def run_worker(spec: dict, workdir: Path) -> dict:
    path = workdir / f"spec-{spec['tool']}-{spec['threads']}-{spec.get('profile', 0)}.json"
    spec["sample"] = str(path.with_suffix(".npy"))
    path.write_text(json.dumps(spec))
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]))
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--worker", str(path)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{spec['tool']} worker failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["sample"] = np.load(spec["sample"])
    return out


def load_times(options: Path, weights: Path, elmo: Path) -> tuple:
    code = ("import sys, time, embtk, embtk.elmo; b = time.perf_counter(); "
            "m = embtk.load_elmo(*sys.argv[1:2], **({'weights': sys.argv[2]} "
            "if len(sys.argv) > 2 else {})); print(time.perf_counter() - b)")
    times = []
    for argv in ([str(elmo)], [str(options), str(weights)]):
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              text=True, check=True)
        times.append(float(proc.stdout.strip().splitlines()[-1]))
    return tuple(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--lines", type=int, default=10_000, help="lines for the small model")
    parser.add_argument("--large-lines", type=int, default=None,
                        help="lines for the large model (default: --lines)")
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the model files are made and kept (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0

    corpus = args.data / "corpus" / "en_corpus.txt"
    if not corpus.exists():
        print(f"missing {corpus}: point --data at the shared data folder (see "
              "../shared/data/README.md)", file=sys.stderr)
        return 2
    torch_ok = not args.no_torch
    if torch_ok:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: measuring embtk only", file=sys.stderr)
            torch_ok = False
    threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="elmo-speed-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows, notes = [], []
        for size in args.sizes.split(","):
            count = args.lines if size != "large" or args.large_lines is None else args.large_lines
            lines = read_lines(corpus, count)
            tokens = sum(len(line.split()) for line in lines)
            options, weights = make_model(workdir, size)
            elmo = workdir / f"{size}.elmo"
            if not elmo.exists():
                import embtk

                embtk.load_elmo(options, weights=weights).save(elmo)
            for n in threads:
                ours = run_worker({"tool": "embtk", "model": str(elmo), "lines": lines,
                                   "threads": n}, workdir)
                row = {"size": size, "threads": n, "lines": len(lines), "tokens": tokens,
                       "embtk_tok_s": tokens / ours["seconds"], "embtk_mb": ours["peak_mb"]}
                if torch_ok:
                    theirs = run_worker({"tool": "torch", "options": str(options),
                                         "weights": str(weights), "lines": lines, "threads": n},
                                        workdir)
                    scale = max(1.0, float(np.abs(theirs["sample"]).max()))
                    row.update(torch_tok_s=tokens / theirs["seconds"], torch_mb=theirs["peak_mb"],
                               max_diff=float(np.abs(ours["sample"] - theirs["sample"]).max())
                               / scale)
                rows.append(row)
            prof = run_worker({"tool": "embtk", "model": str(elmo), "lines": lines, "threads": 1,
                               "profile": True}, workdir)
            p = prof["profile"]
            total = prof["seconds"]
            gates = p["LSTM gates (numba)"]
            notes.append(f"{size}, 1 thread, {total:.1f} s: token encoder "
                         f"{p['token encoder'] / total:.0%}, LSTM products (BLAS) "
                         f"{(p['LSTM total'] - gates) / total:.0%}, LSTM gates (numba) "
                         f"{gates / total:.0%}, the rest (batching, packing, output) "
                         f"{1 - (p['token encoder'] + p['LSTM total']) / total:.0%}")
            if size == "large":
                mapped, hdf5 = load_times(options, weights, elmo)
                notes.append(f"large model load: .elmo {mapped:.3f} s, .hdf5 {hdf5:.2f} s")
    print(f"en_corpus.txt lines taken evenly across the file; batches of {BATCH} sentences")
    head = "| model | threads | lines | tokens | embtk tok/s |"
    if torch_ok:
        head += " torch tok/s | embtk / torch | peak MB embtk / torch | max rel. diff |"
    else:
        head += " peak MB |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        line = (f"| {r['size']} | {r['threads']} | {r['lines']:,} | {r['tokens']:,} | "
                f"{r['embtk_tok_s']:,.0f} |")
        if torch_ok:
            line += (f" {r['torch_tok_s']:,.0f} | {r['embtk_tok_s'] / r['torch_tok_s']:.2f}x | "
                     f"{r['embtk_mb']:,.0f} / {r['torch_mb']:,.0f} | {r['max_diff']:.1e} |")
        else:
            line += f" {r['embtk_mb']:,.0f} |"
        print(line)
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
