"""Fine-tune a nib checkpoint on a JSONL task set ({"prompt": ..., "completion": ...} per line).

The loss is on the completion tokens (and the closing <|endoftext|>) only. The
prompt is tokenized as given (no BOS); the completion follows directly, so a
FIM-formatted prompt (ending in <fim_middle>) trains infilling. Examples are
right-padded per batch and left-truncated to --seq-len. Uses the same loop,
schedule, checkpoints and plots as nib-pretrain.

Usage: nib-finetune --model runs/base/final --data tasks.jsonl --out runs/ft --max-steps 500 --lr 3e-4
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from .pretrain import add_common_args, train


def load_examples(path, tok, seq_len):
    eot = tok.token_to_id("<|endoftext|>")
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fine-tune a nib model on prompt/completion JSONL")
    ap.add_argument("--model", required=True, help="HF folder to start from (e.g. runs/base/final)")
    ap.add_argument("--data", required=True, help="JSONL with prompt and completion fields")
    add_common_args(ap)
    ap.set_defaults(lr=3e-4, warmup=20, eval_every=0, max_steps=200)
    args = ap.parse_args(argv)
    args.init_from = args.model
    args.tokenizer = args.tokenizer or args.model
    args.corpus = None
    args.title = "nib fine-tuning"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(args.tokenizer) / "tokenizer.json"))
    examples, eot = load_examples(args.data, tok, args.seq_len)
    if not examples:
        raise SystemExit("no examples in " + args.data)
    print(f"fine-tuning on {len(examples)} examples")
    train(args, stream_factory=lambda state: batches(examples, args.batch_size, eot, args.seed + state["step"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
