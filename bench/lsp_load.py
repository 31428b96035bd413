"""Load and soak of `nib serve`: a script, not a test (it measures, it asserts
nothing a machine's speed decides).

storm: 10,000 edits and 1,000 completion requests (every other one
cancelled by the next, as VS Code does) over 60 s, spread over a few open
documents, with `nib/status` asked every 50 ms. Reports how the completions
were answered, `nib/status` latency p50/p95/max during the storm, and
resident memory before and after.

soak: `--minutes` of an editing session: typing with completions, saves
(each reviews the file), `nib.reviewFile`, documents opened and closed, and
resident memory sampled every 10 s, plotted to a PNG (bench/out/soak.png).

    .venv/bin/python bench/lsp_load.py storm --model models/default
    .venv/bin/python bench/lsp_load.py soak --minutes 30 --model models/default

Raw numbers go to bench/out/lsp_load-{storm,soak}.json. Standard library
only (the PNG is written with zlib). Linux (reads /proc for memory).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import struct
import sys
import threading
import time
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from lsp_typing import ROOT, Server, percentile, position  # noqa: E402

OUT = ROOT / "bench" / "out"
SOURCES = [
    ROOT / "tests" / "pytest_lsp" / "test_nib.py",
    ROOT / "bench" / "lsp_typing.py",
    ROOT / "models" / "nib_models" / "fim.py",
]


class Client:
    """A Server whose messages a thread consumes: responses are recorded by
    id with their arrival time, server requests are answered at once."""

    def __init__(self, server: Server):
        self.server = server
        self.lock = threading.Lock()
        self.responses: dict[int, tuple[float, dict]] = {}
        self.diagnostics = 0
        self.stop = False
        threading.Thread(target=self._consume, daemon=True).start()

    def _consume(self):
        while not self.stop:
            try:
                at, message = self.server.messages.get(timeout=0.2)
            except Exception:
                continue
            if message is None:
                if self.stop:
                    return
                print("nib exited:\n" + "".join(self.server.stderr[-30:]), file=sys.stderr)
                os._exit(1)
            if "method" in message and "id" in message:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "id" in message:
                with self.lock:
                    self.responses[message["id"]] = (at, message)
            elif message.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics += 1

    def send(self, message: dict) -> float:
        with self.lock:
            return self.server.send(message)

    def request(self, method: str, params) -> tuple[int, float]:
        with self.lock:
            return self.server.request(method, params)

    def notify(self, method: str, params) -> float:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, rid: int, timeout: float = 60.0) -> tuple[float, dict]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                if rid in self.responses:
                    return self.responses.pop(rid)
            time.sleep(0.002)
        raise SystemExit(f"request {rid}: no answer in {timeout} s")


def start(args) -> tuple[Client, Server]:
    cmd = [args.bin, "serve", "--stdio", "--device", "cpu", "--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    server = Server(cmd, {**os.environ, "NIB_LOG": os.environ.get("NIB_LOG", "warn")})
    client = Client(server)
    rid, _ = client.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {},
                                           "initializationOptions": {"nib": {"debounceMs": 10}}})
    client.wait(rid)
    client.notify("initialized", {})
    while True:
        rid, _ = client.request("nib/status", None)
        status = client.wait(rid)[1]["result"]
        if status["state"] == "ready":
            return client, server
        if status["state"] == "error":
            raise SystemExit(f"model did not load: {status['message']}")
        time.sleep(0.05)


class Doc:
    def __init__(self, client: Client, path: pathlib.Path, n: int):
        self.uri = f"file:///load/{n}/{path.name}"
        self.text = path.read_text().replace("\r\n", "\n")
        self.version = 1
        self.client = client
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": "python", "version": 1, "text": self.text}})

    def type(self, offset: int, ch: str) -> dict:
        at = position(self.text, offset)
        self.version += 1
        self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": ch}],
        })
        self.text = self.text[:offset] + ch + self.text[offset:]
        return position(self.text, offset + 1)

    def close(self):
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": self.uri}})


def outcome(message: dict) -> str:
    if "error" in message:
        return "cancelled" if message["error"].get("code") == -32800 else "error"
    result = message.get("result") or {}
    items = result.get("items", []) if isinstance(result, dict) else result
    return "suggestion" if items else "empty"


def storm(args) -> dict:
    client, server = start(args)
    rng = random.Random(1)
    docs = [Doc(client, SOURCES[i % len(SOURCES)], i) for i in range(4)]
    rss_before = server.rss_kb()[0]
    status_ids: list[tuple[int, float]] = []
    completions: list[int] = []
    edits, per_completion = args.edits, max(args.edits // args.completions, 1)
    t0 = time.perf_counter()
    next_status = t0
    last = None
    for i in range(edits):
        # Pace the storm over --seconds.
        due = t0 + args.seconds * i / edits
        while time.perf_counter() < due:
            time.sleep(0.0005)
        if time.perf_counter() >= next_status:
            status_ids.append(client.request("nib/status", None))
            next_status += 0.05
        doc = docs[i % len(docs)]
        at = doc.type(rng.randrange(len(doc.text) + 1), rng.choice("abcxyz_ ().\n"))
        if i % per_completion == 0:
            if last is not None and len(completions) % 2 == 0:
                client.notify("$/cancelRequest", {"id": last})
            last, _ = client.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": doc.uri}, "position": at, "context": {"triggerKind": 2}})
            completions.append(last)
    sent_s = time.perf_counter() - t0
    outcomes: dict[str, int] = {}
    for rid in completions:
        outcomes[o] = outcomes.get(o := outcome(client.wait(rid)[1]), 0) + 1
    latencies = [(client.wait(rid)[0] - sent) * 1000 for rid, sent in status_ids]
    rss_after = server.rss_kb()[0]
    rid, _ = client.request("nib/status", None)
    stats = client.wait(rid)[1]["result"]["stats"]
    shutdown(client, server)
    return {
        "edits": edits, "completions": len(completions), "seconds_to_send": round(sent_s, 1),
        "answers": outcomes, "server_stats": stats,
        "status_requests": len(latencies),
        "status_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "max": max(latencies)},
        "rss_mb": {"before": rss_before / 1024, "after": rss_after / 1024},
    }


def soak(args) -> dict:
    client, server = start(args)
    rng = random.Random(2)
    docs = [Doc(client, SOURCES[i % len(SOURCES)], i) for i in range(3)]
    opened = len(docs)
    t0 = time.perf_counter()
    end = t0 + args.minutes * 60
    samples: list[tuple[float, float]] = [(0.0, server.rss_kb()[0] / 1024)]
    next_sample = t0 + 10
    counts = {"keystrokes": 0, "completions": 0, "saves": 0, "reviews": 0, "reopened": 0}
    outcomes: dict[str, int] = {}
    pending: list[int] = []
    while time.perf_counter() < end:
        doc = rng.choice(docs)
        cursor = rng.randrange(len(doc.text) + 1)
        for ch in rng.choice(["x = compute(a, b)\n", "if value == None:\n    ", "return total + 1"]):
            at = doc.type(cursor, ch)
            cursor += 1
            counts["keystrokes"] += 1
            rid, _ = client.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": doc.uri}, "position": at, "context": {"triggerKind": 2}})
            pending.append(rid)
            counts["completions"] += 1
            time.sleep(0.08)
        for rid in pending:
            outcomes[o] = outcomes.get(o := outcome(client.wait(rid)[1]), 0) + 1
        pending.clear()
        roll = rng.random()
        if roll < 0.3:
            client.notify("textDocument/didSave", {"textDocument": {"uri": doc.uri}})
            counts["saves"] += 1
        elif roll < 0.4:
            rid, _ = client.request("workspace/executeCommand",
                                    {"command": "nib.reviewFile", "arguments": [doc.uri]})
            client.wait(rid, timeout=300)
            counts["reviews"] += 1
        elif roll < 0.5:
            doc.close()
            docs.remove(doc)
            opened += 1
            docs.append(Doc(client, SOURCES[opened % len(SOURCES)], opened))
            counts["reopened"] += 1
        if time.perf_counter() >= next_sample:
            samples.append((time.perf_counter() - t0, server.rss_kb()[0] / 1024))
            next_sample += 10
    samples.append((time.perf_counter() - t0, server.rss_kb()[0] / 1024))
    rid, _ = client.request("nib/status", None)
    status = client.wait(rid)[1]["result"]
    shutdown(client, server)
    plot(samples, OUT / "soak.png", f"nib serve RSS over a {args.minutes}-minute soak (MB)")
    third = max(len(samples) // 3, 1)
    first, last = samples[:third], samples[-third:]
    return {
        "minutes": args.minutes, "counts": counts, "answers": outcomes,
        "diagnostics_published": client.diagnostics,
        "server_stats": status["stats"], "review_stats": status["review"],
        "rss_mb": {
            "start": samples[0][1], "end": samples[-1][1], "max": max(m for _, m in samples),
            "mean_first_third": sum(m for _, m in first) / len(first),
            "mean_last_third": sum(m for _, m in last) / len(last),
        },
        "samples": samples,
    }


def shutdown(client: Client, server: Server):
    rid, _ = client.request("shutdown", None)
    client.wait(rid)
    client.stop = True  # the end of output that follows is expected
    client.notify("exit", None)
    server.proc.wait(timeout=10)


def plot(samples: list[tuple[float, float]], path: pathlib.Path, title: str) -> None:
    """A line plot as a PNG, drawn pixel by pixel (no plotting library)."""
    w, h, margin = 640, 320, 40
    img = [[255] * w for _ in range(h)]
    xs = [s for s, _ in samples] or [0.0]
    ys = [m for _, m in samples] or [0.0]
    x_max = max(max(xs), 1.0)
    y_max = max(ys) * 1.2 or 1.0

    def px(x, y):
        return (margin + int((w - 2 * margin) * x / x_max), h - margin - int((h - 2 * margin) * y / y_max))

    for x in range(margin, w - margin):
        img[h - margin][x] = 0
    for y in range(margin, h - margin + 1):
        img[y][margin] = 0
    # Gridlines every 50 MB.
    step = 50.0
    y = step
    while y < y_max:
        _, gy = px(0, y)
        for x in range(margin, w - margin, 4):
            img[gy][x] = 180
        y += step
    points = [px(x, y) for x, y in samples]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            x, y = x0 + (x1 - x0) * i // n, y0 + (y1 - y0) * i // n
            for dy in (-1, 0, 1):
                if 0 <= y + dy < h:
                    img[y + dy][x] = 40
    raw = b"".join(b"\x00" + bytes(row) for row in img)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"tEXt", b"Title\x00" + title.encode())
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["storm", "soak"])
    ap.add_argument("--model", help="model folder (default: nib's default model)")
    ap.add_argument("--bin", default=os.environ.get("NIB_BIN", str(ROOT / "target" / "release" / "nib")))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--edits", type=int, default=10_000)
    ap.add_argument("--completions", type=int, default=1_000)
    ap.add_argument("--seconds", type=float, default=60.0, help="storm: the time the edits are spread over")
    ap.add_argument("--minutes", type=float, default=30.0, help="soak: its length")
    args = ap.parse_args()
    if not pathlib.Path(args.bin).is_file():
        raise SystemExit(f"{args.bin} does not exist: cargo build --release (or pass --bin)")
    result = storm(args) if args.mode == "storm" else soak(args)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"lsp_load-{args.mode}.json"
    out.write_text(json.dumps(result, indent=1))
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
