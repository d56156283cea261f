"""The peer of Spark.Benchmarks' train-step suite: one fp32 training step (forward + backward + global-norm clipping +
AdamW) of the same 4-layer Llama (hidden 256, 8 heads / 4 kv heads, intermediate 688, vocab 4096, untied head)
at batch 8 x 128 in PyTorch on the CPU, written with batched ops as transformers' modeling_llama does.
Prints one JSON object. Usage: python3 train_step_torch.py [threads] [reps]"""
import json, math, statistics, sys, time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
torch.set_num_threads(threads)
torch.manual_seed(0)

V, H, I, L, NH, NKV, B, T = 4096, 256, 688, 4, 8, 4, 8, 128
HD = H // NH
EPS = 1e-5


class RMSNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(H))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rotate_half(x):
    return torch.cat((-x[..., HD // 2:], x[..., :HD // 2]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(), RMSNorm()
        self.q = torch.nn.Linear(H, NH * HD, bias=False)
        self.k = torch.nn.Linear(H, NKV * HD, bias=False)
        self.v = torch.nn.Linear(H, NKV * HD, bias=False)
        self.o = torch.nn.Linear(NH * HD, H, bias=False)
        self.gate = torch.nn.Linear(H, I, bias=False)
        self.up = torch.nn.Linear(H, I, bias=False)
        self.down = torch.nn.Linear(I, H, bias=False)

    def forward(self, x, cos, sin, mask):
        h = self.input_layernorm(x)
        q = self.q(h).view(B, T, NH, HD).transpose(1, 2)
        k = self.k(h).view(B, T, NKV, HD).transpose(1, 2)
        v = self.v(h).view(B, T, NKV, HD).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(HD) + mask
        attn = torch.softmax(scores, dim=-1) @ v
        x = x + self.o(attn.transpose(1, 2).reshape(B, T, NH * HD))
        h = self.post_attention_layernorm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, H)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(L))
        self.norm = RMSNorm()
        self.lm_head = torch.nn.Linear(H, V, bias=False)
        inv = 1.0 / (10000.0 ** (torch.arange(0, HD, 2).float() / HD))
        ang = torch.arange(T).float()[:, None] * inv[None, :]
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        self.register_buffer("mask", torch.full((T, T), float("-inf")).triu(1))

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.mask)
        return self.lm_head(self.norm(x))


model = Llama()
decay = [p for n, p in model.named_parameters() if "norm" not in n]
no_decay = [p for n, p in model.named_parameters() if "norm" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
ids = (torch.arange(B * T, dtype=torch.int64) * 2654435761 % 4096).view(B, T)


def step():
    opt.zero_grad(set_to_none=True)
    logits = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(2):
    step()
times = []
start_all = time.perf_counter()
while len(times) < reps or time.perf_counter() - start_all < 3:
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
median = statistics.median(times)
print(json.dumps({
    "implementation": f"torch {torch.__version__} (CPU, {threads} threads)",
    "median_ms": round(median, 2),
    "min_ms": round(min(times), 2),
    "tokens_per_second": round(B * T / (median / 1000), 1),
    "runs": len(times),
    "parameters": sum(p.numel() for p in model.parameters()),
}))
