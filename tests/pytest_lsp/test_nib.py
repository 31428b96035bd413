"""nib serve, driven by pytest-lsp (pygls' client) with the recorded
capabilities of real editors (VS Code 1.65, Neovim 0.11).

Runs target/debug/nib (build it first with `cargo build`); NIB_BIN points
elsewhere. The model is the tiny random-weight fixture, so the tests check
structure, not content.

    python -m pip install -r tests/pytest_lsp/requirements.txt
    python -m pytest tests/pytest_lsp
"""

import asyncio
import os
import pathlib
import sys
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = pathlib.Path(__file__).resolve().parents[2]
NIB = os.environ.get("NIB_BIN", str(ROOT / "target" / "debug" / "nib"))
LLAMA = ROOT / "tests" / "fixtures" / "models" / "llama"
URI = "file:///work/project/app.py"
APP = "import os\n\ndef load(path):\n    with open(path) as f:\n        return f.read()\n\n"

if not pathlib.Path(NIB).is_file():
    pytest.skip(f"{NIB} not built (cargo build)", allow_module_level=True)


def capabilities(editor: str) -> types.ClientCapabilities:
    caps = client_capabilities(editor)
    # Neither recording knows LSP 3.18's inline completion; both editors do now.
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[NIB, "serve", "--stdio", "--model", str(LLAMA), "--device", "cpu"],
        server_env={**os.environ, "NIB_LOG": "warn"},
    ),
    params=["visual-studio-code", "neovim"],
)
async def client(request, lsp_client: LanguageClient):
    editor = request.param
    result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(editor),
            initialization_options={"nib": {"debounceMs": 10, "maxTokens": 24}},
        )
    )
    lsp_client.editor = editor
    lsp_client.init_result = result
    yield
    await lsp_client.shutdown_session()


async def status(client: LanguageClient) -> dict:
    return await client.protocol.send_request_async("nib/status", None)


async def wait_ready(client: LanguageClient, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = await status(client)
        state = s["state"] if isinstance(s, dict) else s.state
        if state == "ready":
            return s
        assert state != "error", s
        assert time.monotonic() < deadline, s
        await asyncio.sleep(0.05)


def field(obj, name):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def open_app(client: LanguageClient, text: str = APP) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
        )
    )


async def test_negotiates_the_position_encoding(client: LanguageClient):
    caps = client.init_result.capabilities
    expected = "utf-8" if client.editor == "neovim" else "utf-16"
    assert caps.position_encoding == expected
    assert caps.inline_completion_provider
    # Clients that declare inline completion get no menu provider, so the two
    # requests do not supersede each other on every keystroke.
    assert caps.completion_provider is None
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental


async def test_model_loading_is_reported_as_progress(client: LanguageClient):
    s = await wait_ready(client)
    assert field(s, "device") == "cpu"
    deadline = time.monotonic() + 20
    while not any(
        any(isinstance(r, types.WorkDoneProgressEnd) for r in reports)
        for reports in client.progress_reports.values()
    ):
        assert time.monotonic() < deadline, client.progress_reports
        await asyncio.sleep(0.05)
    (reports,) = client.progress_reports.values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)


async def test_inline_completion_after_incremental_edits(client: LanguageClient):
    await wait_ready(client)
    open_app(client)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(6, 0), types.Position(6, 0)),
                    text="def save(path, data):\n    with open(pa",
                )
            ],
        )
    )
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(7, 16),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    assert len(items) == 1
    item = items[0]
    assert isinstance(item.insert_text, str) and item.insert_text
    assert item.range == types.Range(types.Position(7, 16), types.Position(7, 16))


async def test_completion_items_for_clients_without_inline(client: LanguageClient):
    await wait_ready(client)
    open_app(client, APP + "x = os.pa")
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(6, 9),
        )
    )
    assert result.is_incomplete
    # Token healing makes the suggestion start with the word typed so far.
    assert len(result.items) == 1, result.items
    for item in result.items:
        edit = item.text_edit
        assert edit.range == types.Range(types.Position(6, 7), types.Position(6, 9))
        assert edit.new_text.startswith("pa")
        assert item.label.startswith("pa")


async def test_status_accepts_empty_params(client: LanguageClient):
    s = await client.protocol.send_request_async("nib/status", {})
    assert field(s, "state") in ("loading", "ready")
    stats = field(s, "stats")
    # No completion was asked for yet; every counter is there, at zero.
    for counter in ("requests", "completed", "cancelled", "failed", "shown"):
        assert field(stats, counter) == 0, stats


async def test_invalid_settings_show_a_message(client: LanguageClient):
    await wait_ready(client)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nib": {"debounceMs": -5}})
    )
    deadline = time.monotonic() + 20
    while not client.messages:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert "debounceMs" in client.messages[0].message
    assert client.messages[0].type == types.MessageType.Warning
    s = await status(client)
    assert field(s, "state") == "ready"


REVIEW_URI = "file:///work/project/check.py"
REVIEW = "def check(x):\n    if x == None:\n        return 0\n    return x\n"


async def test_review_publishes_diagnostics_and_the_quick_fix_applies(client: LanguageClient):
    await wait_ready(client)
    caps = client.init_result.capabilities
    assert "nib.reviewFile" in caps.execute_command_provider.commands
    # Every candidate place becomes a finding, whatever the random model prefers.
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nib": {"review": {"minConfidence": 0}}})
    )
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=REVIEW_URI, language_id="python", version=1, text=REVIEW
            )
        )
    )
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="nib.reviewFile", arguments=[REVIEW_URI])
    )
    assert result["state"] == "published", result
    deadline = time.monotonic() + 20
    while len(client.diagnostics.get(REVIEW_URI, [])) != result["findings"]:
        assert time.monotonic() < deadline, client.diagnostics
        await asyncio.sleep(0.05)
    # ASCII text: columns are string indices in either encoding.
    lines = REVIEW.split("\n")
    for d in client.diagnostics[REVIEW_URI]:
        assert d.source == "nib" and d.code and d.message
        assert d.range.start.line == d.range.end.line
        line = lines[d.range.start.line]
        assert line[d.range.start.character : d.range.end.character] == d.data["original"], d
    (eq,) = [d for d in client.diagnostics[REVIEW_URI] if d.range.start.line == 1]
    assert eq.data["original"] == "=="
    assert eq.range.start == types.Position(1, lines[1].index("=="))

    # The code action for it, asked at the cursor without diagnostics (the
    # server looks its findings up) and with them: the same fix.
    for context in ([], [eq]):
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=REVIEW_URI),
                range=types.Range(eq.range.start, eq.range.start),
                context=types.CodeActionContext(diagnostics=context),
            )
        )
        (action,) = actions
        assert action.kind == types.CodeActionKind.QuickFix
        assert action.is_preferred
        assert action.title == f"nib: replace `==` with `{eq.data['replacement']}`"
        edits = (
            action.edit.changes[REVIEW_URI]
            if action.edit.changes
            else [e for c in action.edit.document_changes for e in c.edits]
        )
        (edit,) = edits
        assert edit.range == eq.range
        fixed = lines[1][: edit.range.start.character] + edit.new_text + lines[1][edit.range.end.character :]
        assert fixed == lines[1].replace("==", eq.data["replacement"], 1)

    # Closing the document clears its diagnostics.
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=REVIEW_URI))
    )
    deadline = time.monotonic() + 20
    while client.diagnostics.get(REVIEW_URI):
        assert time.monotonic() < deadline, client.diagnostics
        await asyncio.sleep(0.05)
