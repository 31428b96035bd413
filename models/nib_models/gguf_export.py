"""Write a model nib ships as GGUF, for llama.cpp and the servers built on it.

nib's default model is a fused ONNX graph (onnxruntime-genai's builder:
`model.layers.N.attn.qkv_proj.MatMul.weight` and friends, weights stored as
MatMul's [in, out]). This reads those initializers, turns them into
llama.cpp's Llama tensors and writes them with the `gguf` package, at f32
or Q8_0, with the byte-level BPE tokenizer and its FIM markers. nib's
prompts start with no BOS, and neither do the GGUF's unless `--add-bos`.

    nib-gguf models/default out/nib-f32.gguf --type f32
    nib-gguf models/default out/nib-q8_0.gguf --type q8_0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# llama.cpp's names for the FIM markers nib's tokenizer has.
FIM_KEYS = {
    "<fim_prefix>": "tokenizer.ggml.fim_pre_token_id",
    "<fim_suffix>": "tokenizer.ggml.fim_suf_token_id",
    "<fim_middle>": "tokenizer.ggml.fim_mid_token_id",
    "<fim_pad>": "tokenizer.ggml.fim_pad_token_id",
    "<file_sep>": "tokenizer.ggml.fim_sep_token_id",
}


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection from Hugging Face's rotate-half order to the
    adjacent pairs llama.cpp's rotary embedding turns (as its converter does)."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def read_initializers(graph: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph), load_external_data=True)
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def llama_tensors(init: dict[str, np.ndarray], config: dict) -> dict[str, np.ndarray]:
    """GGUF tensors (numpy [out, in], as Hugging Face stores them) from the
    fused graph's initializers."""
    layers = config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or config["hidden_size"] // heads

    def get(name: str) -> np.ndarray:
        if name not in init:
            raise SystemExit(
                f"the graph has no initializer {name}: nib-gguf reads the fused layout nib-fuse writes"
            )
        return init[name].astype(np.float32)

    lm_head = get("lm_head.MatMul.weight").T  # [vocab, hidden]
    out = {"token_embd.weight": lm_head}
    if not config.get("tie_word_embeddings", False):
        out["output.weight"] = lm_head
    for n in range(layers):
        p = f"model.layers.{n}"
        qkv = get(f"{p}.attn.qkv_proj.MatMul.weight").T  # [q + k + v, hidden]
        q_rows, kv_rows = heads * head_dim, kv_heads * head_dim
        q, k, v = np.split(qkv, [q_rows, q_rows + kv_rows])
        out[f"blk.{n}.attn_norm.weight"] = get(f"{p}.input_layernorm.weight")
        out[f"blk.{n}.attn_q.weight"] = permute(q, heads)
        out[f"blk.{n}.attn_k.weight"] = permute(k, kv_heads)
        out[f"blk.{n}.attn_v.weight"] = v
        out[f"blk.{n}.attn_output.weight"] = get(f"{p}.attn.o_proj.MatMul.weight").T
        out[f"blk.{n}.ffn_norm.weight"] = get(f"{p}.post_attention_layernorm.weight")
        out[f"blk.{n}.ffn_gate.weight"] = get(f"{p}.mlp.gate_proj.MatMul.weight").T
        out[f"blk.{n}.ffn_up.weight"] = get(f"{p}.mlp.up_proj.MatMul.weight").T
        out[f"blk.{n}.ffn_down.weight"] = get(f"{p}.mlp.down_proj.MatMul.weight").T
    out["output_norm.weight"] = get(f"model.layers.{layers}.final_norm_layernorm.weight")
    return {name: np.ascontiguousarray(t) for name, t in out.items()}


def tokenizer_fields(tokenizer: dict) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """Tokens in id order, their GGUF types, merges, and the added tokens."""
    import gguf

    model = tokenizer["model"]
    if model.get("type") != "BPE":
        raise SystemExit("nib-gguf writes byte-level BPE tokenizers only")
    pre = tokenizer.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        raise SystemExit(
            "the tokenizer's pre-tokenizer is not GPT-2's byte-level regex, which is the one GGUF's `gpt-2` names"
        )
    added = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    by_id = {i: tok for tok, i in model["vocab"].items()}
    by_id.update({i: tok for tok, i in added.items()})
    size = max(by_id) + 1
    tokens, types = [], []
    for i in range(size):
        tok = by_id.get(i)
        if tok is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(tok)
            types.append(
                gguf.TokenType.CONTROL
                if tok in special
                else gguf.TokenType.USER_DEFINED
                if tok in added
                else gguf.TokenType.NORMAL
            )
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, types, merges, added


def write(model_dir: Path, out: Path, kind: str, add_bos: bool = False) -> dict:
    import gguf

    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise SystemExit(f"nib-gguf writes Llama models; this one is {config.get('model_type')}")
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    graph = model_dir / "model.onnx"
    if not graph.is_file():
        graph = model_dir / "onnx" / "model.onnx"
    tensors = llama_tensors(read_initializers(graph), config)
    tokens, types, merges, added = tokenizer_fields(tokenizer)

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    qtype = {"f32": gguf.GGMLQuantizationType.F32, "q8_0": gguf.GGMLQuantizationType.Q8_0}[kind]
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), arch="llama")
    w.add_name(model_dir.resolve().name)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if kind == "f32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(config.get("num_key_value_heads", heads))
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-5))
    w.add_rope_freq_base(config.get("rope_theta", 10000.0))
    w.add_vocab_size(config["vocab_size"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eos = config.get("eos_token_id", 0)
    eos = eos[0] if isinstance(eos, list) else eos
    w.add_eos_token_id(eos)
    # Named so that servers know it (nib puts it before the prompts it
    # scores), added to prompts only when asked.
    w.add_bos_token_id(config.get("bos_token_id", eos))
    w.add_add_bos_token(add_bos)
    for token, key in FIM_KEYS.items():
        if token in added:
            w.add_uint32(key, added[token])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, t in tensors.items():
        tq = gguf.GGMLQuantizationType.F32 if t.ndim <= 1 or name.endswith("_norm.weight") else qtype
        data = t if tq == gguf.GGMLQuantizationType.F32 else gguf.quants.quantize(t, tq)
        w.add_tensor(name, data, raw_dtype=tq)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"file": str(out), "type": kind, "tensors": len(tensors), "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nib-gguf", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="model folder (config.json, tokenizer.json, model.onnx)")
    ap.add_argument("out", type=Path, help="the .gguf file to write")
    ap.add_argument("--type", choices=["f32", "q8_0"], default="f32")
    ap.add_argument("--add-bos", action="store_true", help="servers put the BOS token before every prompt")
    args = ap.parse_args(argv)
    print(json.dumps(write(args.model, args.out, args.type, add_bos=args.add_bos)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
