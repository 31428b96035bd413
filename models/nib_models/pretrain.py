"""Pretrain a Llama-architecture code model (transformers LlamaForCausalLM).

Next-token loss on packed sequences; the FIM transformation (fim.py) is applied
to ``--fim-rate`` of the documents (half PSM, half SPM by default), on pieces of
documents that fit the context. Cosine schedule with linear warm-up; with
``--time-budget`` the schedule's progress is max(step/steps, elapsed/budget),
so a run on a slow or shared machine still decays its learning rate and ends
in time. bf16 autocast (CPU with avx512_bf16, or CUDA). Checkpoints every
``--ckpt-minutes`` minutes / ``--ckpt-every`` steps into OUT/ckpt (atomic), resumed
automatically when OUT/ckpt exists. Loss curves in OUT/loss.png, metrics in
OUT/log.jsonl; the final model (HF format, with tokenizer) in OUT/final.

Usage (CPU default model):
  nib-pretrain --corpus /work/nibdata/corpus --tokenizer models/work/tokenizer --out runs/base \\
      --hidden 256 --layers 4 --heads 4 --kv-heads 2 --seq-len 512 --batch-size 8 --time-budget 70
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import shutil
import sys
import threading
import time
from pathlib import Path

import torch

from .fim import FimIds, transform_batch


# --------------------------------------------------------------------------- data

def load_docs(path, max_docs=None):
    docs = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            docs.append(d)
            if max_docs and len(docs) >= max_docs:
                break
    return docs


def split_piece(text: str, max_chars: int) -> list[str]:
    """Split a document into pieces of at most ~max_chars, at line boundaries."""
    if len(text) <= max_chars:
        return [text]
    out, cur, n = [], [], 0
    for line in text.splitlines(keepends=True):
        if n + len(line) > max_chars and cur:
            out.append("".join(cur))
            cur, n = [], 0
        cur.append(line)
        n += len(line)
    if cur:
        out.append("".join(cur))
    return out


class PackedStream:
    """Yields (batch LongTensor [B, T], cursor) from shuffled, FIM-transformed, packed documents.

    The cursor (epoch, piece index) after a batch lets a resumed run continue
    from there. A background thread tokenizes ahead (HF tokenizers release the GIL)."""

    def __init__(self, texts, tokenizer, seq_len, batch_size, fim_rate=0.5, spm_rate=0.5, line_rate=0.5,
                 seed=0, piece_chars=None, cursor=(0, 0), prefetch=8, chunk_docs=64):
        self.pieces = []
        piece_chars = piece_chars or seq_len * 3
        for t in texts:
            self.pieces.extend(split_piece(t, piece_chars))
        self.tok = tokenizer
        self.ids = FimIds.from_tokenizer(tokenizer)
        self.seq_len, self.batch_size = seq_len, batch_size
        self.fim_rate, self.spm_rate, self.line_rate = fim_rate, spm_rate, line_rate
        self.seed = seed
        self.cursor = tuple(cursor)
        self.chunk_docs = chunk_docs
        self.q: queue.Queue = queue.Queue(maxsize=prefetch)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _encode_batch(self, segs):
        return [e.ids for e in self.tok.encode_batch(segs, add_special_tokens=False)]

    def _run(self):
        epoch, idx = self.cursor
        buf: list[int] = []
        need = self.seq_len * self.batch_size
        while not self.stop:
            order = list(range(len(self.pieces)))
            random.Random(self.seed * 1000003 + epoch).shuffle(order)
            while idx < len(order) and not self.stop:
                chunk = [self.pieces[i] for i in order[idx:idx + self.chunk_docs]]
                rng = random.Random((self.seed, epoch, idx).__hash__())
                seqs, _ = transform_batch(chunk, self._encode_batch, self.ids, rng, self.fim_rate,
                                          self.spm_rate, self.line_rate)
                idx += len(chunk)
                for s in seqs:
                    buf.extend(s)
                while len(buf) >= need:
                    x = torch.tensor(buf[:need], dtype=torch.long).view(self.batch_size, self.seq_len)
                    del buf[:need]
                    self.q.put((x, (epoch, idx)))
            epoch, idx = epoch + 1, 0

    def __iter__(self):
        while True:
            yield self.q.get()

    def close(self):
        self.stop = True
        try:
            while True:
                self.q.get_nowait()
        except queue.Empty:
            pass


def heldout_batches(docs, tokenizer, seq_len, n_seqs=48, seed=1):
    """Fixed held-out sequences (plain next-token, no FIM) and their character counts.

    Returns list of (ids LongTensor [T], n_chars) where n_chars is the number of
    characters the T-1 predicted tokens cover (for bits per character)."""
    rng = random.Random(seed)
    docs = list(docs)
    rng.shuffle(docs)
    out = []
    eot = tokenizer.token_to_id("<|endoftext|>")
    for d in docs:
        if len(out) >= n_seqs:
            break
        enc = tokenizer.encode(d["text"], add_special_tokens=False)
        ids = enc.ids
        if len(ids) < seq_len // 2:
            continue
        ids = ids[:seq_len]
        offs = enc.offsets[:seq_len]
        # predicted tokens are ids[1:]: they cover characters from offs[1][0] to offs[-1][1]
        n_chars = offs[-1][1] - offs[1][0] if len(offs) > 1 else 1
        out.append((torch.tensor(ids, dtype=torch.long), max(1, n_chars)))
    del eot
    return out


@torch.no_grad()
def evaluate_heldout(model, batches, device, amp_dtype, bs=8):
    model.eval()
    nats, toks, chars = 0.0, 0, 0
    for i in range(0, len(batches), bs):
        group = batches[i:i + bs]
        for ids, n_chars in group:  # variable lengths: one at a time is simplest and cheap enough
            x = ids[None].to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0, :-1], x[0, 1:], reduction="sum")
            nats += float(loss)
            toks += x.shape[1] - 1
            chars += n_chars
    model.train()
    return {"heldout_loss": nats / max(1, toks), "heldout_bpc": nats / math.log(2) / max(1, chars)}


def cargo_busy() -> bool:
    """True while a cargo/rustc process runs on this machine (the CPU is shared with Rust builds)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() in ("rustc", "cargo", "cc1", "cc1plus", "ld", "lld"):
                return True
        except OSError:
            continue
    return False


def adapt_threads(spec: str, max_threads: int = 2):
    """--threads auto: 1 thread while a Rust build runs, else ``max_threads``."""
    if spec != "auto":
        return
    want = 1 if cargo_busy() else max_threads
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


# --------------------------------------------------------------------------- model / schedule

def make_config(vocab_size, hidden, layers, heads, kv_heads, intermediate, seq_len, rope_theta=10000.0,
                eos_id=0):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=seq_len,
        rope_theta=rope_theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        initializer_range=0.02,
        attn_implementation="sdpa",
    )


def lr_at(progress, step, warmup, lr, min_ratio):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, max(0.0, progress))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def make_optimizer(model, lr, wd, device):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    kw = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": nodecay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8, **kw)


def pick_amp(device, want):
    if want == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16
    if want == "bf16":
        return torch.bfloat16
    try:
        flags = Path("/proc/cpuinfo").read_text()
        return torch.bfloat16 if "avx512_bf16" in flags or "amx_bf16" in flags else None
    except OSError:
        return None


def save_checkpoint(out: Path, model, optimizer, tokenizer_dir, state):
    tmp = out / "ckpt.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    copy_tokenizer(tokenizer_dir, tmp)
    final = out / "ckpt"
    old = out / "ckpt.old"
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def copy_tokenizer(tokenizer_dir, dest):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        src = Path(tokenizer_dir) / name
        if src.exists():
            shutil.copy(src, Path(dest) / name)


def plot_log(log_path: Path, png_path: Path, title="nib pretraining"):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [json.loads(l) for l in open(log_path) if l.strip()]
    tr = [r for r in rows if "loss" in r]
    ev = [r for r in rows if "heldout_loss" in r]
    if not tr:
        return
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4), dpi=80)
    x = [r["tokens"] / 1e6 for r in tr]
    y = [r["loss"] for r in tr]
    k = max(1, len(y) // 100)
    ys = [sum(y[max(0, i - k):i + 1]) / len(y[max(0, i - k):i + 1]) for i in range(len(y))]
    ax[0].plot(x, y, alpha=0.25, lw=0.6, label="train (per log step)")
    ax[0].plot(x, ys, lw=1.2, label="train (smoothed)")
    if ev:
        ax[0].plot([r["tokens"] / 1e6 for r in ev], [r["heldout_loss"] for r in ev], "o-", ms=3,
                   label="held-out packages")
    ax[0].set_xlabel("tokens (M)")
    ax[0].set_ylabel("loss (nats/token)")
    ax[0].set_ylim(top=min(max(y), (ys[min(len(ys) - 1, 5)] if ys else 10) + 0.5))
    ax[0].legend(fontsize=7)
    ax[0].set_title(title, fontsize=9)
    ax[1].plot(x, [r["lr"] for r in tr], lw=1)
    ax[1].set_xlabel("tokens (M)")
    ax[1].set_ylabel("learning rate")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


# --------------------------------------------------------------------------- train loop

def train(args, model=None, stream_factory=None, log=print):
    """Shared loop for pretraining (and, through ``stream_factory``, fine-tuning)."""
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    if str(args.threads) == "auto":
        adapt_threads("auto")
    else:
        torch.set_num_threads(int(args.threads))
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(Path(args.tokenizer) / "tokenizer.json"))
    amp = pick_amp(device, args.precision)
    torch.manual_seed(args.seed)

    state = {"step": 0, "tokens": 0, "elapsed": 0.0, "cursor": [0, 0], "best_heldout": None}
    ckpt = out / "ckpt"
    if ckpt.exists() and not args.no_resume:
        model = LlamaForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        state = json.loads((ckpt / "state.json").read_text())
        log(f"resuming from {ckpt} at step {state['step']}")
    elif model is None:
        if args.init_from:
            model = LlamaForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
        else:
            cfg = make_config(tok.get_vocab_size(), args.hidden, args.layers, args.heads, args.kv_heads,
                              args.intermediate or int(args.hidden * 8 / 3 / 32 + 0.999) * 32, args.seq_len,
                              args.rope_theta, eos_id=tok.token_to_id("<|endoftext|>"))
            model = LlamaForCausalLM(cfg)
    model.to(device)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters; amp={amp}; device={device}")
    opt = make_optimizer(model, args.lr, args.weight_decay, device)
    if (ckpt / "optimizer.pt").exists() and state["step"] > 0:
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=device))
    fwd = model
    if args.compile:
        fwd = torch.compile(model)

    heldout = []
    corpora = [args.corpus] if isinstance(args.corpus, (str, Path)) else list(args.corpus or [])
    if corpora and (Path(corpora[0]) / "heldout.jsonl").exists() and args.eval_every > 0:
        heldout = heldout_batches(load_docs(Path(corpora[0]) / "heldout.jsonl"), tok, args.seq_len,
                                  n_seqs=args.eval_seqs)
    if stream_factory is None:
        texts = []
        for c in corpora:
            texts += [d["text"] for d in load_docs(Path(c) / "train.jsonl", args.max_docs)]
        stream = PackedStream(texts, tok, args.seq_len, args.batch_size, args.fim_rate, args.spm_rate,
                              args.line_rate, seed=args.seed, cursor=state["cursor"])
        log(f"data: {len(stream.pieces)} pieces from {len(texts)} documents")
    else:
        stream = stream_factory(state)
    it = iter(stream)

    log_f = open(out / "log.jsonl", "a")
    t_start = time.time() - state["elapsed"]
    last_ckpt = time.time()
    t_log, tok_log = time.time(), 0
    budget = args.time_budget * 60 if args.time_budget else None
    step = state["step"]
    (out / "train_args.json").write_text(json.dumps(vars(args), indent=1, default=str))

    def progress():
        p = step / args.max_steps if args.max_steps else 0.0
        if budget:
            p = max(p, (time.time() - t_start) / budget)
        return p

    def do_eval():
        if not heldout:
            return None
        r = evaluate_heldout(model, heldout, device, amp)
        r.update(step=step, tokens=state["tokens"], elapsed=time.time() - t_start)
        log_f.write(json.dumps(r) + "\n")
        log_f.flush()
        log(f"step {step}: held-out loss {r['heldout_loss']:.4f}, bpc {r['heldout_bpc']:.4f}")
        return r

    def checkpoint():
        state.update(step=step, elapsed=time.time() - t_start)
        save_checkpoint(out, model, opt, args.tokenizer, state)
        plot_log(out / "log.jsonl", out / "loss.png", getattr(args, "title", "nib pretraining"))

    while True:
        if args.max_steps and step >= args.max_steps:
            break
        if budget and time.time() - t_start >= budget:
            break
        lr = lr_at(progress(), step, args.warmup, args.lr, args.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        loss_acc = 0.0
        extra = {}
        for _ in range(args.grad_accum):
            batch = next(it)
            if isinstance(batch, dict):  # a fine-tuning objective of its own (finetune.py)
                loss, n_tok, stats = args.batch_loss(fwd, batch, device, amp)
                (loss / args.grad_accum).backward()
                loss_acc += float(loss.detach()) / args.grad_accum
                state["tokens"] += n_tok
                tok_log += batch["n_inputs"]
                for k, v in stats.items():
                    extra[k] = extra.get(k, 0.0) + v / args.grad_accum
                continue
            if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[1], tuple):
                x, cursor = batch
                labels = x
                state["cursor"] = list(cursor)
            else:  # (input_ids, labels) from a fine-tuning stream
                x, labels = batch
            x = x.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                try:
                    logits = fwd(input_ids=x).logits
                except Exception as e:  # noqa: BLE001 - torch.compile failures: fall back to eager
                    if fwd is model:
                        raise
                    log(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); continuing eager")
                    fwd = model
                    logits = fwd(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
            (loss / args.grad_accum).backward()
            loss_acc += float(loss.detach()) / args.grad_accum
            n_tok = int((labels[:, 1:] != -100).sum())
            state["tokens"] += n_tok
            tok_log += x.numel()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % args.log_every == 0 or step == 1:
            adapt_threads(str(args.threads))
            dt = time.time() - t_log
            rec = dict(step=step, loss=round(loss_acc, 4), lr=lr, grad_norm=round(float(gn), 3),
                       tokens=state["tokens"], tok_per_s=round(tok_log / max(dt, 1e-9), 1),
                       threads=torch.get_num_threads(),
                       elapsed=round(time.time() - t_start, 1), progress=round(progress(), 4),
                       **{k: round(v, 4) for k, v in extra.items()})
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()
            log(json.dumps(rec))
            t_log, tok_log = time.time(), 0
        if args.eval_every and step % args.eval_every == 0:
            do_eval()
        if (args.ckpt_every and step % args.ckpt_every == 0) or \
                (args.ckpt_minutes and time.time() - last_ckpt > args.ckpt_minutes * 60):
            checkpoint()
            last_ckpt = time.time()
    if hasattr(stream, "close"):
        stream.close()
    final_eval = do_eval()
    checkpoint()
    final = out / "final"
    if final.exists():
        shutil.rmtree(final)
    if args.final_dtype == "bf16":  # smaller files to bring back from a GPU machine
        model.to(torch.bfloat16)
    model.save_pretrained(final, safe_serialization=True, max_shard_size=args.max_shard_size)
    copy_tokenizer(args.tokenizer, final)
    summary = dict(step=step, tokens=state["tokens"], elapsed_s=round(time.time() - t_start, 1),
                   params=n_params, final_eval=final_eval, device=str(device), amp=str(amp),
                   threads=args.threads, seq_len=args.seq_len, batch_size=args.batch_size * args.grad_accum)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"done: {json.dumps(summary)}")
    log_f.close()
    return model, summary


def add_common_args(ap):
    ap.add_argument("--tokenizer", default=None, help="folder with tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (GPU)")
    ap.add_argument("--threads", default="auto", help="torch threads, or auto (1 while cargo builds, else 2)")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--time-budget", type=float, default=0, help="minutes; training stops and the schedule ends")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-seqs", type=int, default=48)
    ap.add_argument("--ckpt-every", type=int, default=0)
    ap.add_argument("--ckpt-minutes", type=float, default=5)
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-shard-size", default="16MB", help="safetensors shard size of the final weights")
    ap.add_argument("--final-dtype", default="fp32", choices=["fp32", "bf16"], help="dtype of OUT/final weights")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Pretrain nib's Llama code model")
    ap.add_argument("--corpus", required=True, nargs="+",
                    help="folder(s) with train.jsonl (and heldout.jsonl, taken from the first)")
    add_common_args(ap)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=0, help="default: 8/3 * hidden rounded up to 32")
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--spm-rate", type=float, default=0.5)
    ap.add_argument("--line-rate", type=float, default=0.5, help="share of FIM splits at cursor-like positions")
    ap.add_argument("--max-docs", type=int, default=0)
    ap.add_argument("--init-from", default=None, help="start from these HF weights instead of random")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if args.device == "cuda" else "false")
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
