"""A plain numpy forward pass of a llama-family GGUF model (fp32 math on dequantised weights).

Slow but simple: it exists so the codec's fidelity can be measured before the engine exists, and
it feeds a given context KV cache (possibly lossy) into the attention of later tokens.
"""
import numpy as np
import gguf
from gguf.quants import dequantize


class Model:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        arch = r.fields["general.architecture"].contents()
        get = lambda key: r.fields[f"{arch}.{key}"].contents()
        self.n_layer = int(get("block_count"))
        self.n_head = int(get("attention.head_count"))
        self.n_kv = int(get("attention.head_count_kv"))
        self.eps = float(get("attention.layer_norm_rms_epsilon"))
        base = float(get("rope.freq_base"))
        self.w = {}
        for t in r.tensors:
            a = dequantize(t.data, t.tensor_type).astype(np.float32)
            self.w[t.name] = a.reshape([int(x) for x in reversed(t.shape)]) if len(t.shape) > 1 else a
        self.head_dim = self.w["blk.0.attn_q.weight"].shape[0] // self.n_head
        self.inv_freq = base ** (-np.arange(0, self.head_dim, 2) / self.head_dim)
        self.out = self.w.get("output.weight", self.w["token_embd.weight"])  # tied embedding

    def _norm(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def _rope(self, x, pos):  # adjacent pairs, as GGUF llama weights are laid out
        ang = pos[:, None] * self.inv_freq[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    def forward(self, tokens, pos0, context=None, logits=True):
        """Runs tokens at positions pos0.. after `context` (per layer (K, V), [kv_head, n, dim]).
        Returns (logits or None, this call's K/V per layer rounded to fp16 like a cache)."""
        n, hd = len(tokens), self.head_dim
        pos = np.arange(pos0, pos0 + n, dtype=np.float64)
        x = self.w["token_embd.weight"][tokens]
        mask = np.triu(np.full((n, n), -np.inf, np.float32), 1)
        kv = []
        for l in range(self.n_layer):
            p = f"blk.{l}."
            h = self._norm(x, self.w[p + "attn_norm.weight"])
            q = self._rope((h @ self.w[p + "attn_q.weight"].T).reshape(n, self.n_head, hd), pos)
            k = self._rope((h @ self.w[p + "attn_k.weight"].T).reshape(n, self.n_kv, hd), pos)
            v = (h @ self.w[p + "attn_v.weight"].T).reshape(n, self.n_kv, hd)
            k = k.astype(np.float16).astype(np.float32).transpose(1, 0, 2)
            v = v.astype(np.float16).astype(np.float32).transpose(1, 0, 2)
            kv.append((k, v))
            K, V = k, v
            if context is not None:
                K = np.concatenate([context[l][0], k], 1)
                V = np.concatenate([context[l][1], v], 1)
            n_ctx = K.shape[1] - n
            att = np.empty((n, self.n_head, hd), np.float32)
            for head in range(self.n_head):
                g = head // (self.n_head // self.n_kv)
                sc = (q[:, head, :] @ K[g].T) / np.sqrt(hd)
                sc[:, n_ctx:] += mask
                sc -= sc.max(1, keepdims=True)
                e = np.exp(sc)
                att[:, head, :] = (e / e.sum(1, keepdims=True)) @ V[g]
            x = x + att.reshape(n, -1) @ self.w[p + "attn_output.weight"].T
            h = self._norm(x, self.w[p + "ffn_norm.weight"])
            gate, up = h @ self.w[p + "ffn_gate.weight"].T, h @ self.w[p + "ffn_up.weight"].T
            x = x + ((gate / (1 + np.exp(-gate))) * up) @ self.w[p + "ffn_down.weight"].T
        out = self._norm(x, self.w["output_norm.weight"]) @ self.out.T if logits else None
        return out, kv
