"""Fine-tune a nib checkpoint on a JSONL task set ({"prompt": ..., "completion": ...} per line).

The loss is on the completion tokens (and the closing <|endoftext|>) only. The
prompt is tokenized as given (no BOS); the completion follows directly, so a
FIM-formatted prompt (ending in <fim_middle>) trains infilling. Examples are
right-padded per batch and left-truncated to --seq-len. Uses the same loop,
schedule, checkpoints and plots as nib-pretrain.

Review task sets (nib-review-data tasks) add ``"negatives"``: other middles that
are wrong at this place. With them each example's loss is

    -log p(completion) / len(completion) - alpha * sum_neg log(1 - p(neg))

(len: its tokens), where p(m) is the probability of the WHOLE middle m followed by <|endoftext|>
after the prompt (the product of its tokens' probabilities: what nib's review
compares), so a negative sharing its first token with the completion (``is`` /
``is not``) is only pushed down where it differs. The prompt is run once and its
keys/values are shared by all candidates. ``--mix-corpus`` adds, to every step,
``--mix-batch`` packed sequences of plain/FIM text (nib-pretrain's stream, 50%
FIM) from that corpus's train.jsonl, so completion quality does not drift; its
heldout.jsonl gives the held-out loss logged every --eval-every steps. Task-set lines
with an empty negatives list are plain infilling examples (the first term only).

Usage: nib-finetune --model runs/base/final --data tasks.jsonl --out runs/ft --max-steps 500 --lr 3e-4
       nib-finetune --model runs/base/final --data review/tasks.jsonl --unlikelihood 1.0 \
           --mix-corpus /work/nibdata/corpus --out runs/review --time-budget 30
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from .pretrain import add_common_args, train


def read_jsonl(path):
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_examples(path, tok, seq_len):
    eot = tok.token_to_id("<|endoftext|>")
    out = []
    for d in read_jsonl(path):
        p = tok.encode(d["prompt"], add_special_tokens=False).ids
        c = tok.encode(d["completion"], add_special_tokens=False).ids + [eot]
        ids = (p + c)[-seq_len:]
        n_prompt = max(0, len(ids) - len(c))
        labels = [-100] * n_prompt + ids[n_prompt:]
        out.append((ids, labels))
    return out, eot


def batches(examples, batch_size, pad_id, seed):
    epoch = 0
    while True:
        order = list(range(len(examples)))
        random.Random(seed * 7919 + epoch).shuffle(order)
        for i in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            group = [examples[j] for j in order[i:i + batch_size]]
            T = max(len(x) for x, _ in group)
            x = torch.full((len(group), T), pad_id, dtype=torch.long)
            y = torch.full((len(group), T), -100, dtype=torch.long)
            for k, (ids, lab) in enumerate(group):
                x[k, :len(ids)] = torch.tensor(ids)
                y[k, :len(lab)] = torch.tensor(lab)
            yield x, y
        epoch += 1


# --------------------------------------------------------------------------- review (negatives)

def load_review_examples(path, tok, seq_len):
    """(prompt ids, [completion ids + eot, negative ids + eot, ...]) per line with negatives."""
    eot = tok.token_to_id("<|endoftext|>")
    out = []
    for d in read_jsonl(path):
        cands = [tok.encode(c, add_special_tokens=False).ids + [eot]
                 for c in [d["completion"], *d.get("negatives", [])]]
        p = tok.encode(d["prompt"], add_special_tokens=False).ids
        p = p[-(seq_len - max(len(c) for c in cands)):]
        out.append((p, cands))
    return out, eot


def candidate_logprobs(model, prompt_ids, cands, pad_id):
    """Log-probability of each candidate sequence after the prompt, tensor [K] (differentiable).

    One forward over the prompt; its cache is repeated for the K candidates, which run as one
    right-padded batch (padding comes after every real token, so no mask is needed)."""
    dev = next(model.parameters()).device
    out = model(input_ids=torch.tensor([prompt_ids], device=dev), use_cache=True)
    first = torch.log_softmax(out.logits[0, -1].float(), -1)
    cache = out.past_key_values
    K, L = len(cands), max(len(c) for c in cands)
    C = torch.full((K, L), pad_id, dtype=torch.long, device=dev)
    mask = torch.zeros((K, L), dtype=torch.bool, device=dev)
    for k, c in enumerate(cands):
        C[k, :len(c)] = torch.tensor(c)
        mask[k, :len(c)] = True
    lp = first[C[:, 0]]
    if L > 1:
        cache.batch_repeat_interleave(K)
        out2 = model(input_ids=C[:, :-1], past_key_values=cache, use_cache=False)
        rest = torch.log_softmax(out2.logits.float(), -1).gather(-1, C[:, 1:, None])[..., 0]
        lp = lp + (rest * mask[:, 1:]).sum(-1)
    return lp


def review_loss(model, examples, pad_id, alpha):
    """Mean over examples of -log p(correct) / its tokens - alpha * sum log(1 - p(negative)); stats
    (over the examples with negatives)."""
    total, acc, p_soft, n_rev = 0.0, 0.0, 0.0, 0
    for prompt, cands in examples:
        lp = candidate_logprobs(model, prompt, cands, pad_id)
        loss = -lp[0] / len(cands[0])
        if len(cands) == 1:  # a plain infilling example
            total = total + loss
            continue
        n_rev += 1
        if alpha and len(cands) > 1:
            neg = lp[1:].clamp(max=-1e-6)
            loss = loss - alpha * torch.log1p(-torch.exp(neg)).sum()
        total = total + loss
        with torch.no_grad():
            acc += float(lp.argmax() == 0)
            p_soft += float(torch.softmax(lp, 0)[0])
    return total / max(1, len(examples)), {"review_acc": acc / max(1, n_rev), "review_p_correct": p_soft / max(1, n_rev)}


def review_stream(examples, batch_size, seed, plain=None):
    """Dict batches: ``batch_size`` review examples and, with ``plain``, one packed batch of it."""
    plain_it = iter(plain) if plain is not None else None
    epoch = 0
    while True:
        order = list(range(len(examples)))
        random.Random(seed * 7919 + epoch).shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            group = [examples[j] for j in order[i:i + batch_size]]
            b = {"review": group, "n_inputs": sum(len(p) + sum(len(c) for c in cs) for p, cs in group)}
            if plain_it is not None:
                b["plain"] = next(plain_it)[0]
                b["n_inputs"] += b["plain"].numel()
            yield b
        epoch += 1


def make_batch_loss(alpha, pad_id, plain_weight):
    def batch_loss(model, batch, device, amp):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss, stats = review_loss(model, batch["review"], pad_id, alpha)
            n_tok = sum(len(c[0]) for _, c in batch["review"])
            if "plain" in batch:
                x = batch["plain"].to(device)
                logits = model(input_ids=x).logits
                plain = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                                          x[:, 1:].reshape(-1))
                stats["plain_loss"] = float(plain.detach())
                loss = loss + plain_weight * plain
                n_tok += x.numel()
        return loss, n_tok, stats
    return batch_loss


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fine-tune a nib model on prompt/completion JSONL")
    ap.add_argument("--model", required=True, help="HF folder to start from (e.g. runs/base/final)")
    ap.add_argument("--data", required=True, help="JSONL with prompt and completion fields")
    ap.add_argument("--unlikelihood", type=float, default=1.0,
                    help="alpha of the unlikelihood term on negatives (review task sets)")
    ap.add_argument("--mix-corpus", default=None,
                    help="corpus folder: plain/FIM sequences from train.jsonl mixed into every step, "
                         "held-out loss from heldout.jsonl")
    ap.add_argument("--mix-batch", type=int, default=2, help="packed sequences of --mix-corpus per step")
    ap.add_argument("--mix-weight", type=float, default=1.0)
    ap.add_argument("--mix-docs", type=int, default=3000, help="documents of --mix-corpus read")
    add_common_args(ap)
    ap.set_defaults(lr=3e-4, warmup=20, eval_every=0, max_steps=200)
    args = ap.parse_args(argv)
    args.init_from = args.model
    args.tokenizer = args.tokenizer or args.model
    args.corpus = args.mix_corpus
    args.title = "nib fine-tuning"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(args.tokenizer) / "tokenizer.json"))
    has_negatives = "negatives" in next(read_jsonl(args.data), {})
    if has_negatives:
        from .pretrain import PackedStream, load_docs

        examples, eot = load_review_examples(args.data, tok, args.seq_len)
        print(f"review fine-tuning on {len(examples)} examples, unlikelihood alpha {args.unlikelihood}")
        args.batch_loss = make_batch_loss(args.unlikelihood, eot, args.mix_weight)

        def factory(state):
            plain = None
            if args.mix_corpus:
                docs = load_docs(Path(args.mix_corpus) / "train.jsonl")
                random.Random(args.seed).shuffle(docs)
                plain = PackedStream([d["text"] for d in docs[:args.mix_docs]], tok, args.seq_len, args.mix_batch,
                                     seed=args.seed + state["step"])
            return review_stream(examples, args.batch_size, args.seed + state["step"], plain)

        train(args, stream_factory=factory)
        return 0
    examples, eot = load_examples(args.data, tok, args.seq_len)
    if not examples:
        raise SystemExit("no examples in " + args.data)
    print(f"fine-tuning on {len(examples)} examples")
    train(args, stream_factory=lambda state: batches(examples, args.batch_size, eot, args.seed + state["step"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
