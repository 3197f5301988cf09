"""Fidelity of the KV codec on the reference model, before the engine exists.

The context (the first --context tokens of a text) is prefilled by a numpy forward pass
(model.py); its KV, unit by unit, goes through the codec; the next --continuation tokens are then
run on top of the decoded KV and compared with running them on the exact KV:
  KL      mean KL(exact || codec) of the next-token distributions, nats
  agree   share of positions where the argmax token is the same
  ppl     perplexity change on the real continuation of the text

Configs:
  codec:LEVEL[@LAYER_BITS]    the real codec, via codec_micro --decoded-out, e.g. codec:q5h@0-11:4/3
  sim:KG,KB,VG,VB             a numpy model of uniform min-max quantisation (design exploration):
                              groupings chan (per channel over the chunk), tokhead (per token and
                              head), tok (per token over all heads); bits B or per layer "0-11:4;12-29:5"
Token ids come from the sidecar JSON of bench/codec_kv_dump.mjs (same tokenizer as the peer).

Example:
  node bench/codec_kv_dump.mjs --tokens 4096 --out /tmp/kv4096.f16
  python3 bench/codec_fidelity/fidelity.py --tokens /tmp/kv4096.f16.json codec:fp16 codec:q5h
"""
import argparse, json, os, subprocess, sys, tempfile, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Model

CHUNK = 1024


def log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def bits_of(spec):
    if ":" not in spec:
        return lambda l: int(spec)
    table = {}
    for part in spec.split(";"):
        layers, b = part.split(":")
        a, _, z = layers.partition("-")
        for l in range(int(a), int(z or a) + 1):
            table[l] = int(b)
    return lambda l: table.get(l, 16)


def sim_quant(x, grouping, bits):
    """x: [kv_head, tokens, dim] of one unit. Returns the reconstruction and the bits spent
    (order-0 entropy of the symbols + 32 bits of parameters per group)."""
    if bits >= 16:
        return x, 16 * x.size
    axes = {"chan": (1,), "tokhead": (2,), "tok": (0, 2)}[grouping]
    lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    q = (1 << bits) - 1
    step = np.where(hi > lo, (hi - lo) / q, 1)
    s = np.clip(np.rint((x - lo) / step), 0, q)
    c = np.bincount(s.astype(np.int64).ravel(), minlength=q + 1).astype(float)
    p = c[c > 0] / c.sum()
    spent = -(p * np.log2(p)).sum() * s.size + 32 * lo.size
    return (s * step + lo).astype(np.float16).astype(np.float32), spent


def write_units(context, path):
    """Writes the context KV as codec units: chunk-major, layer-minor, K then V."""
    n = context[0][0].shape[1]
    with open(path, "wb") as f:
        for t0 in range(0, n, CHUNK):
            for k, v in context:
                f.write(k[:, t0:t0 + CHUNK].astype(np.float16).tobytes())
                f.write(v[:, t0:t0 + CHUNK].astype(np.float16).tobytes())


def read_units(path, like):
    n = like[0][0].shape[1]
    heads, dim = like[0][0].shape[0], like[0][0].shape[2]
    raw = np.fromfile(path, dtype=np.float16).astype(np.float32)
    out = [(np.empty_like(k), np.empty_like(v)) for k, v in like]
    at = 0
    for t0 in range(0, n, CHUNK):
        m = min(CHUNK, n - t0)
        for l in range(len(like)):
            for which in (0, 1):
                out[l][which][:, t0:t0 + m] = raw[at:at + heads * m * dim].reshape(heads, m, dim)
                at += heads * m * dim
    return out


def run_codec(args, context, level, layer_bits):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "ctx.f16"), os.path.join(tmp, "dec.f16")
        write_units(context, src)
        cmd = [args.codec_micro, "--kv", src, "--levels", level, "--runs", "1", "--json",
               "--layers", str(len(context)), "--max-units", "100000", "--decoded-out", dst]
        if layer_bits:
            cmd += ["--layer-bits", layer_bits]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        row = [r for r in result["levels"] if r["level"] == level][0]
        bits = 16 / row["ratio_vs_fp16"]
        return read_units(dst, context), {"bits_per_element": bits, "ratio_vs_fp16": row["ratio_vs_fp16"]}


def run_sim(context, spec):
    kg, kb, vg, vb = spec.split(",")
    kbits, vbits = bits_of(kb), bits_of(vb)
    out, spent = [], {"k": 0.0, "v": 0.0, "n": 0}
    for l, (k, v) in enumerate(context):
        k2, v2 = np.empty_like(k), np.empty_like(v)
        for t0 in range(0, k.shape[1], CHUNK):
            sl = slice(t0, t0 + CHUNK)
            k2[:, sl], bk = sim_quant(k[:, sl], kg, kbits(l))
            v2[:, sl], bv = sim_quant(v[:, sl], vg, vbits(l))
            spent["k"] += bk
            spent["v"] += bv
            spent["n"] += k[:, sl].size
        out.append((k2, v2))
    b = (spent["k"] + spent["v"]) / (2 * spent["n"])
    return out, {"bits_per_element": b, "bits_k": spent["k"] / spent["n"],
                 "bits_v": spent["v"] / spent["n"], "ratio_vs_fp16": 16 / b}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--tokens", required=True, help="sidecar JSON of codec_kv_dump.mjs")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/sparkv/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--context", type=int, default=3072)
    ap.add_argument("--continuation", type=int, default=1024)
    ap.add_argument("--codec-micro", default="build/bench/codec_micro")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "sparkv-fidelity"))
    args = ap.parse_args()

    tokens = np.array(json.load(open(args.tokens))["token_ids"])
    if len(tokens) < args.context + args.continuation:
        sys.exit(f"need {args.context + args.continuation} tokens, the sidecar has {len(tokens)}")
    ctx_tokens, cont = tokens[:args.context], tokens[args.context:args.context + args.continuation]
    model = Model(args.model)
    os.makedirs(args.cache, exist_ok=True)
    tag = f"{os.path.basename(args.tokens)}-{args.context}-{args.continuation}"
    ctx_file, base_file = os.path.join(args.cache, f"ctx-{tag}.npz"), os.path.join(args.cache, f"base-{tag}.npy")
    if not os.path.exists(ctx_file):
        _, kv = model.forward(ctx_tokens, 0, logits=False)
        np.savez(ctx_file, k=np.stack([k for k, _ in kv]), v=np.stack([v for _, v in kv]))
    z = np.load(ctx_file)
    context = [(z["k"][l], z["v"][l]) for l in range(model.n_layer)]
    if not os.path.exists(base_file):
        np.save(base_file, log_softmax(model.forward(cont, args.context, context)[0]))
    base = np.load(base_file)
    target = cont[1:]
    ppl = lambda lp: float(np.exp(-lp[np.arange(len(target)), target].mean()))
    ppl0 = ppl(base[:-1])
    print(json.dumps({"baseline_ppl": ppl0, "context": args.context, "continuation": args.continuation}), flush=True)

    for config in args.configs:
        t = time.time()
        kind, _, spec = config.partition(":")
        if kind == "codec":
            level, _, layer_bits = spec.partition("@")
            lossy, info = run_codec(args, context, level, layer_bits)
        elif kind == "sim":
            lossy, info = run_sim(context, spec)
        else:
            sys.exit(f"unknown config {config}")
        lp = log_softmax(model.forward(cont, args.context, lossy)[0])
        p = ppl(lp[:-1])
        info.update({"config": config, "kl": float((np.exp(base) * (base - lp)).sum(1).mean()),
                     "top1_agree": float((lp.argmax(1) == base.argmax(1)).mean()), "ppl": p,
                     "ppl_change_pct": (p / ppl0 - 1) * 100, "seconds": round(time.time() - t)})
        print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
