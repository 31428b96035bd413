"""LSP typing benchmark: replays typing a real source file through `nib serve`.

A region of the file is removed, then typed back one character at a time:
each keystroke is an incremental `textDocument/didChange` followed by a
`textDocument/inlineCompletion` with an automatic trigger, as VS Code does
(it also cancels the previous request with `$/cancelRequest`; `--client
helix` never cancels and leaves supersession to the server).

Measures:
- latency from a keystroke's didChange to the answer of its request, for
  answers with a suggestion and for all answers, p50/p95 (warm: the first
  `--warmup` keystrokes are left out);
- wasted inference: the server's own counters from `nib/status`
  (time and tokens of runs that were interrupted or whose answer was not
  used, versus all runs);
- the server's resident memory (VmRSS sampled during the run, and VmHWM).

    .venv/bin/python bench/lsp_typing.py --model models/default
    .venv/bin/python bench/lsp_typing.py --model tests/fixtures/models/llama --chars 200

Prints a summary; raw numbers go to bench/out/lsp_typing.json. Standard
library only. Linux (reads /proc for memory).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import queue
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DEFAULT_FILE = ROOT / "tests" / "pytest_lsp" / "test_nib.py"


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    self.messages.put((time.perf_counter(), None))
                    return
                line = line.decode().strip()
                if not line:
                    break
                key, value = line.split(":", 1)
                headers[key.lower()] = value.strip()
            body = out.read(int(headers["content-length"]))
            self.messages.put((time.perf_counter(), json.loads(body)))

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def send(self, message: dict) -> float:
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return time.perf_counter()

    def request(self, method: str, params) -> tuple[int, float]:
        self.next_id += 1
        sent = self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id, sent

    def notify(self, method: str, params) -> float:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def poll(self, timeout: float, on_response) -> bool:
        """Handles one message; False on timeout."""
        try:
            at, message = self.messages.get(timeout=max(timeout, 0))
        except queue.Empty:
            return False
        if message is None:
            raise SystemExit("nib exited:\n" + "".join(self.stderr[-30:]))
        if "method" in message and "id" in message:
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
        elif "id" in message:
            on_response(message, at)
        return True

    def call(self, method: str, params, timeout: float = 60.0):
        rid, _ = self.request(method, params)
        got = {}

        def keep(message, at):
            got[message["id"]] = message

        deadline = time.perf_counter() + timeout
        while rid not in got:
            if not self.poll(deadline - time.perf_counter(), keep):
                raise SystemExit(f"{method}: no answer in {timeout} s")
        if "error" in got[rid]:
            raise SystemExit(f"{method}: {got[rid]['error']}")
        return got[rid]["result"]

    def rss_kb(self) -> tuple[int, int]:
        rss = hwm = 0
        try:
            for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        except OSError:
            pass
        return rss, hwm


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def position(text: str, offset: int) -> dict:
    """LSP position (UTF-16) of a character offset in text with \\n lines."""
    before = text[:offset]
    line = before.count("\n")
    col_text = before[before.rfind("\n") + 1 :]
    return {"line": line, "character": len(col_text.encode("utf-16-le")) // 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: nib's default model)")
    ap.add_argument("--bin", default=os.environ.get("NIB_BIN", str(ROOT / "target" / "release" / "nib")))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--file", type=pathlib.Path, default=DEFAULT_FILE, help="source file to type")
    ap.add_argument("--language", default=None, help="languageId (default: from the extension)")
    ap.add_argument("--start-line", type=int, default=None, help="line where typing starts (default: 40%% into the file)")
    ap.add_argument("--chars", type=int, default=400, help="characters to type")
    ap.add_argument("--interval-ms", type=float, default=100.0, help="time between keystrokes")
    ap.add_argument("--line-pause-ms", type=float, default=400.0, help="extra pause after each newline")
    ap.add_argument("--debounce-ms", type=int, default=None, help="server debounce (default: the server's)")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=10, help="keystrokes left out of the latency numbers")
    ap.add_argument("--client", choices=["vscode", "helix"], default="vscode")
    ap.add_argument("--out", type=pathlib.Path, default=OUT / "lsp_typing.json")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for nib serve, repeatable (--serve-arg=--backend --serve-arg=llama.cpp ...)")
    args = ap.parse_args()

    if not pathlib.Path(args.bin).is_file():
        raise SystemExit(f"{args.bin} does not exist: cargo build --release (or pass --bin)")
    source = args.file.read_text().replace("\r\n", "\n")
    lines = source.split("\n")
    start_line = args.start_line if args.start_line is not None else int(len(lines) * 0.4)
    start = sum(len(l) + 1 for l in lines[:start_line])
    typed = source[start : start + args.chars]
    doc = source[:start] + source[start + len(typed) :]
    language = args.language or {
        ".py": "python", ".rs": "rust", ".ts": "typescript", ".js": "javascript", ".go": "go",
    }.get(args.file.suffix, "plaintext")

    cmd = [args.bin, "serve", "--stdio", "--device", args.device, "--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    cmd += args.serve_arg
    env = {**os.environ, "NIB_LOG": os.environ.get("NIB_LOG", "warn")}
    server = Server(cmd, env)
    options: dict = {}
    if args.debounce_ms is not None:
        options["debounceMs"] = args.debounce_ms
    if args.max_tokens is not None:
        options["maxTokens"] = args.max_tokens
    t0 = time.perf_counter()
    server.call("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {},
                               "initializationOptions": {"nib": options}})
    init_ms = (time.perf_counter() - t0) * 1000
    server.notify("initialized", {})
    while True:
        status = server.call("nib/status", None)
        if status["state"] == "ready":
            break
        if status["state"] == "error":
            raise SystemExit(f"model did not load: {status['message']}")
        time.sleep(0.05)
    ready_ms = (time.perf_counter() - t0) * 1000
    uri = pathlib.Path(args.file).resolve().as_uri()
    server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": doc}})

    pending: dict[int, dict] = {}  # request id -> keystroke record
    records: list[dict] = []
    rss_samples: list[int] = []

    def on_response(message, at):
        rec = pending.pop(message["id"], None)
        if rec is None:
            return
        rec["answered_ms"] = (at - rec["typed_at"]) * 1000
        if "error" in message:
            rec["outcome"] = "cancelled" if message["error"].get("code") == -32800 else "error"
            return
        result = message.get("result") or {}
        items = result.get("items", []) if isinstance(result, dict) else result
        rec["outcome"] = "suggestion" if items else "empty"

    text = doc
    cursor = start
    version = 1
    next_at = time.perf_counter() + 0.2
    last_id = None
    for i, ch in enumerate(typed):
        while True:
            left = next_at - time.perf_counter()
            if left <= 0:
                break
            server.poll(left, on_response)
        if args.client == "vscode" and last_id in pending:
            server.notify("$/cancelRequest", {"id": last_id})
        at = position(text, cursor)
        version += 1
        typed_at = server.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": ch}],
        })
        text = text[:cursor] + ch + text[cursor:]
        cursor += 1
        rid, _ = server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri},
            "position": position(text, cursor),
            "context": {"triggerKind": 2},
        })
        rec = {"i": i, "char": ch, "typed_at": typed_at, "outcome": None}
        records.append(rec)
        pending[rid] = rec
        last_id = rid
        next_at = typed_at + args.interval_ms / 1000 + (args.line_pause_ms / 1000 if ch == "\n" else 0)
        if i % 20 == 0:
            rss_samples.append(server.rss_kb()[0])
    deadline = time.perf_counter() + 30
    while pending and time.perf_counter() < deadline:
        server.poll(deadline - time.perf_counter(), on_response)
    rss, hwm = server.rss_kb()
    rss_samples.append(rss)
    status = server.call("nib/status", None)
    server.call("shutdown", None)
    server.notify("exit", None)
    try:
        code = server.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        code = None

    warm = [r for r in records if r["i"] >= args.warmup]
    with_suggestion = [r["answered_ms"] for r in warm if r["outcome"] == "suggestion"]
    answered = [r["answered_ms"] for r in warm if r["outcome"] in ("suggestion", "empty")]
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[str(r["outcome"])] = outcomes.get(str(r["outcome"]), 0) + 1
    stats = status["stats"]
    summary = {
        "model": status.get("model"),
        "device": status.get("device"),
        "file": str(args.file),
        "chars": len(typed),
        "interval_ms": args.interval_ms,
        "line_pause_ms": args.line_pause_ms,
        "client": args.client,
        "threads": args.threads,
        "initialize_ms": round(init_ms, 1),
        "model_ready_ms": round(ready_ms, 1),
        "latency_suggestion_ms": {"n": len(with_suggestion), "p50": percentile(with_suggestion, 50), "p95": percentile(with_suggestion, 95)},
        "latency_any_answer_ms": {"n": len(answered), "p50": percentile(answered, 50), "p95": percentile(answered, 95)},
        "outcomes": outcomes,
        "server_stats": stats,
        "wasted_time_share": (stats["wastedMs"] / stats["busyMs"]) if stats["busyMs"] else 0.0,
        "wasted_token_share": (stats["wastedTokens"] / stats["tokens"]) if stats["tokens"] else 0.0,
        "rss_mb_max_sampled": max(rss_samples) / 1024,
        "rss_mb_end": rss / 1024,
        "rss_mb_peak_hwm": hwm / 1024,
        "exit_code": code,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".stderr.log").write_text("".join(server.stderr))
    args.out.write_text(json.dumps({"summary": summary, "records": [
        {k: v for k, v in r.items() if k != "typed_at"} for r in records
    ]}, indent=1))

    def fmt(v):
        return "n/a" if v is None else f"{v:.1f}"

    print(f"model {summary['model']} on {summary['device']}, {len(typed)} chars of {args.file.name} "
          f"every {args.interval_ms:.0f} ms (+{args.line_pause_ms:.0f} ms at line ends), client {args.client}")
    print(f"initialize answered in {init_ms:.1f} ms; model ready after {ready_ms:.0f} ms")
    s, a = summary["latency_suggestion_ms"], summary["latency_any_answer_ms"]
    print(f"keystroke -> suggestion: p50 {fmt(s['p50'])} ms, p95 {fmt(s['p95'])} ms (n={s['n']})")
    print(f"keystroke -> any answer: p50 {fmt(a['p50'])} ms, p95 {fmt(a['p95'])} ms (n={a['n']})")
    print(f"outcomes: {outcomes}")
    print(f"inference: busy {stats['busyMs']:.0f} ms, wasted {stats['wastedMs']:.0f} ms "
          f"({100 * summary['wasted_time_share']:.1f}%); tokens {stats['tokens']}, wasted {stats['wastedTokens']} "
          f"({100 * summary['wasted_token_share']:.1f}%); runs completed {stats['completed']}, interrupted "
          f"{stats['interrupted']}, debounced {stats['debounced']}, superseded {stats['superseded']}, "
          f"cancelled before start {stats['cancelled']}, discarded {stats['discarded']}")
    print(f"resident memory: max sampled {summary['rss_mb_max_sampled']:.1f} MB, peak (VmHWM) {summary['rss_mb_peak_hwm']:.1f} MB")
    print(f"exit code {code}; raw numbers in {args.out}")


if __name__ == "__main__":
    main()
