#!/usr/bin/env node
// A stand-in for `nib serve --stdio`, for the editor tests only.
//
// It speaks nib's protocol (inline completion, $/progress while "loading",
// nib/status, nib.reviewFile) but has no model: it suggests a fixed text and
// "reviews" a file by flagging every line that holds `== None` with a quick
// fix that rewrites it to `is None`. It is for plugin work without a model
// (NIB_EDITOR_MOCK=1 editors/run-tests.sh).
//
// Usage: node mock-server.js [serve] [--stdio]
// Environment: NIB_MOCK_SUGGESTION (default mock_<line>_<character>()),
//              NIB_MOCK_LOAD_MS (default 300): how long "loading" lasts.
'use strict';

const SUGGESTION = process.env.NIB_MOCK_SUGGESTION; // default: mock_<line>_<character>()
const LOAD_MS = Number(process.env.NIB_MOCK_LOAD_MS || 300);

const docs = new Map();
let state = 'loading';
let settings = {};
let nextId = 1;

function send(msg) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...msg }), 'utf8');
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}
const notify = (method, params) => send({ method, params });
const request = (method, params) => send({ id: `mock-${nextId++}`, method, params });
const reply = (id, result) => send({ id, result });

function review(uri) {
  const text = docs.get(uri) || '';
  const diagnostics = [];
  text.split('\n').forEach((line, i) => {
    const col = line.indexOf('== None');
    if (col >= 0) {
      diagnostics.push({
        range: { start: { line: i, character: col }, end: { line: i, character: col + 7 } },
        severity: 2,
        source: 'nib',
        code: 'none-comparison',
        message: 'comparison to None should use `is None`',
        data: { confidence: 0.9 },
      });
    }
  });
  notify('textDocument/publishDiagnostics', { uri, diagnostics });
}

function handle(msg) {
  const { id, method, params } = msg;
  if (method === undefined) return; // a response to one of our requests
  switch (method) {
    case 'initialize':
      settings = (params.initializationOptions || {}).nib || {};
      reply(id, {
        capabilities: {
          textDocumentSync: 1,
          inlineCompletionProvider: {},
          completionProvider: {},
          codeActionProvider: { codeActionKinds: ['quickfix'] },
          executeCommandProvider: { commands: ['nib.reviewFile'] },
        },
        serverInfo: { name: 'nib-mock', version: '0' },
      });
      break;
    case 'initialized':
      request('window/workDoneProgress/create', { token: 'nib-load' });
      notify('$/progress', { token: 'nib-load', value: { kind: 'begin', title: 'nib: loading model', percentage: 0 } });
      setTimeout(() => {
        state = 'ready';
        notify('$/progress', { token: 'nib-load', value: { kind: 'end', message: 'ready' } });
      }, LOAD_MS);
      break;
    case 'workspace/didChangeConfiguration':
      settings = (params.settings || {}).nib || settings;
      break;
    case 'textDocument/didOpen':
      docs.set(params.textDocument.uri, params.textDocument.text);
      break;
    case 'textDocument/didChange':
      docs.set(params.textDocument.uri, params.contentChanges[params.contentChanges.length - 1].text);
      break;
    case 'textDocument/didClose':
      docs.delete(params.textDocument.uri);
      break;
    case 'nib/status':
      reply(id, { state, model: 'mock-model', device: 'cpu', message: state === 'ready' ? 'mock ready' : 'mock loading' });
      break;
    case 'textDocument/inlineCompletion':
      reply(id, state === 'ready' ? { items: [{ insertText: SUGGESTION || `mock_${params.position.line}_${params.position.character}()` }] } : { items: [] });
      break;
    case 'textDocument/completion':
      reply(id, state === 'ready' ? { isIncomplete: true, items: [{ label: SUGGESTION || 'mock', insertText: SUGGESTION || 'mock' }] } : []);
      break;
    case 'workspace/executeCommand':
      if (params.command === 'nib.reviewFile') review(params.arguments[0]);
      reply(id, null);
      break;
    case 'textDocument/codeAction': {
      const uri = params.textDocument.uri;
      const actions = (params.context.diagnostics || [])
        .filter((d) => d.source === 'nib' && d.code === 'none-comparison')
        .map((d) => ({
          title: 'nib: use `is None`',
          kind: 'quickfix',
          isPreferred: true,
          diagnostics: [d],
          edit: { changes: { [uri]: [{ range: d.range, newText: 'is None' }] } },
        }));
      reply(id, actions);
      break;
    }
    case 'shutdown':
      reply(id, null);
      break;
    case 'exit':
      process.exit(0);
      break;
    default:
      if (id !== undefined) send({ id, error: { code: -32601, message: `unhandled ${method}` } });
  }
}

let buf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const sep = buf.indexOf('\r\n\r\n');
    if (sep < 0) return;
    const m = /Content-Length: *(\d+)/i.exec(buf.slice(0, sep).toString('ascii'));
    const len = Number(m[1]);
    if (buf.length < sep + 4 + len) return;
    const body = buf.slice(sep + 4, sep + 4 + len).toString('utf8');
    buf = buf.slice(sep + 4 + len);
    handle(JSON.parse(body));
  }
});
process.stdin.on('end', () => process.exit(0));
