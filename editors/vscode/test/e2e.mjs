// End-to-end tests of the nib extension in a real VS Code: code-server from
// npm, driven in Debian's Chromium by playwright-core.
//
//   node e2e.mjs
//
// Environment:
//   NIB_SERVER        server binary (absolute path; required)
//   NIB_MODEL         model folder for the `nib.model` setting
//   NIB_TEST_SUITE    "real" (default), "mock" (the mock server: fixed
//                     suggestions and review diagnostics with a quick fix) or
//                     "bundled" (a platform .vsix from scripts/release.sh: no
//                     nib.serverPath or nib.model, so the server it carries
//                     runs with nib's default model; also takes the pictures
//                     in the READMEs)
//   NIB_VSIX          the packaged extension (default ../nib.vsix)
//   CODE_SERVER_JS    code-server's entry.js (default ../../.tools/code-server/…)
//   CHROMIUM          browser binary (default /usr/bin/chromium)
//   NIB_TEST_RESULTS  file results are appended to ("ok …", "not ok …: why", "skip …: why")
//   NIB_TEST_OUT      folder for artifacts (default ./out): ghost-text.png, logs
//
// Every wait has a timeout, the whole run has one, and code-server's process
// group is killed at the end whatever happens.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const suite = process.env.NIB_TEST_SUITE || 'real';
const server = process.env.NIB_SERVER;
const model = process.env.NIB_MODEL || '';
const vsix = process.env.NIB_VSIX || path.join(here, '..', 'nib.vsix');
const codeServerJs =
  process.env.CODE_SERVER_JS || path.join(here, '..', '..', '.tools', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const outDir = path.resolve(process.env.NIB_TEST_OUT || path.join(here, 'out'));
const resultsPath = process.env.NIB_TEST_RESULTS;
const TOTAL_TIMEOUT_MS = 300_000;

fs.mkdirSync(outDir, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `nib-vscode-${suite}-`));
const userData = path.join(tmp, 'user-data');
const extensions = path.join(tmp, 'extensions');
const workspace = path.join(tmp, 'workspace');
const eventLog = path.join(tmp, 'events.jsonl');
const planted = path.join(tmp, 'workspace-server');
fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
fs.mkdirSync(workspace, { recursive: true });

function log(msg) {
  process.stderr.write(`[vscode ${suite}] ${msg}\n`);
}
function result(line) {
  log(line);
  if (resultsPath) fs.appendFileSync(resultsPath, line + '\n');
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, timeoutMs, cond, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
function events() {
  try {
    return fs.readFileSync(eventLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

let codeServer;
let browser;
async function cleanup() {
  try {
    await browser?.close();
  } catch {}
  if (codeServer?.pid) {
    // code-server's watchers outlive it: end the whole process group.
    for (const sig of ['SIGTERM', 'SIGKILL']) {
      try {
        process.kill(-codeServer.pid, sig);
      } catch {}
      await sleep(1500);
    }
  }
}
const hardTimeout = setTimeout(async () => {
  result(`not ok vscode-${suite}: suite timed out after ${TOTAL_TIMEOUT_MS} ms`);
  await cleanup();
  process.exit(2);
}, TOTAL_TIMEOUT_MS);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(130);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function codeServerArgs(...args) {
  return [codeServerJs, '--user-data-dir', userData, '--extensions-dir', extensions, ...args];
}

async function setup() {
  if (!server && suite !== 'bundled') throw new Error('NIB_SERVER is not set');
  // The extension host takes PATH from the login shell, so point the setting
  // at an absolute path; a wrapper fixes node for the mock server too.
  let serverPath = suite === 'bundled' ? undefined : path.resolve(server);
  if (serverPath?.endsWith('.js')) {
    serverPath = path.join(tmp, 'mock-nib');
    fs.writeFileSync(serverPath, `#!/bin/sh\nexec "${process.execPath}" "${path.resolve(server)}" "$@"\n`, { mode: 0o755 });
  }
  const settings = {
    // The bundled suite leaves both unset: the extension's own server and model.
    ...(serverPath ? { 'nib.serverPath': serverPath, 'nib.model': model } : {}),
    'nib.device': 'cpu',
    'nib.maxTokens': 24,
    'nib.debounceMs': 20,
    // Every candidate place is a finding, whatever the model prefers: the
    // review test is deterministic with any model, the random one included.
    'nib.review.minConfidence': 0,
    'nib.debug.eventLog': eventLog,
    'nib.trace.server': 'messages',
    'editor.inlineSuggest.enabled': true,
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
    'editor.autoClosingBrackets': 'never',
    'editor.autoClosingQuotes': 'never',
    'editor.insertSpaces': true,
    'files.autoSave': 'off',
    'files.insertFinalNewline': false,
    'files.trimTrailingWhitespace': false,
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'extensions.ignoreRecommendations': true,
    'extensions.autoCheckUpdates': false,
    'update.mode': 'none',
    'telemetry.telemetryLevel': 'off',
    'chat.disableAIFeatures': true,
    'window.restoreWindows': 'none',
  };
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  // A hostile checkout's settings: a program of its own as the server, its
  // own arguments, and a file of its choosing to write. None may be used.
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  fs.writeFileSync(planted, `#!/bin/sh\necho ran > "${planted}.ran"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({
    'nib.serverPath': planted,
    'nib.serverArgs': ['--model', '/nonexistent'],
    'nib.debug.eventLog': `${planted}.log`,
  }, null, 2));
  log(`installing ${vsix}`);
  execFileSync(process.execPath, codeServerArgs('--install-extension', vsix), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });

  const port = await freePort();
  const csLog = fs.openSync(path.join(outDir, `code-server-${suite}.log`), 'w');
  codeServer = spawn(
    process.execPath,
    codeServerArgs('--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', workspace),
    { detached: true, stdio: ['ignore', csLog, csLog], env: { ...process.env, SHELL: '/bin/sh' } },
  );
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
  await waitFor('code-server to listen', 60_000, async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 250);
  browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    timeout: 60_000,
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  await page.goto(url, { timeout: 60_000 });
  await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
  return page;
}

async function statusText(page) {
  return page.evaluate(() => {
    const items = [...document.querySelectorAll('.statusbar-item')];
    const item = items.find((e) => /\bnib\b/.test(e.textContent || '') && (e.id || '').includes('nib'));
    return item ? item.textContent.trim() : null;
  });
}

/** Opens a workspace file holding `content` in an editor, cursor at its end. */
async function openFile(page, name, content) {
  const file = path.join(workspace, name);
  fs.writeFileSync(file, content);
  for (let attempt = 0; attempt < 3; attempt++) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    try {
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 5000 });
      await input.fill(name);
      await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${name}"]`, { timeout: 10_000 });
      await page.keyboard.press('Enter');
      await page.waitForSelector(`.tab[data-resource-name="${name}"].active, .tab.active[aria-label*="${name}"]`, { timeout: 10_000 });
      break;
    } catch (e) {
      if (attempt === 2) throw e;
    }
  }
  await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+End');
  return file;
}

async function ghostText(page) {
  return page.evaluate(() => {
    const el = document.querySelectorAll('.editor-instance .ghost-text-decoration, .editor-instance .ghost-text-decoration-preview, .editor-instance .ghost-text');
    return el.length ? [...el].map((e) => e.textContent).join('\n') : null;
  });
}

/** The first item of the last non-empty inline completion answer. */
function lastSuggestion() {
  const ev = events().filter((e) => e.event === 'inlineCompletion' && e.items.length && e.items[0]);
  return ev.length ? ev[ev.length - 1] : null;
}

const normEol = (s) => s.replace(/\r\n?/g, '\n');

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('opening a Python file starts the extension; the status bar shows ready', async (page) => {
  // The extension activates on the languages nib serves, not at startup.
  if (events().some((e) => e.event === 'activated')) throw new Error('activated before any file of a served language opened');
  await openFile(page, 'status.py', 'import os\n');
  const text = await waitFor('"nib: ready" in the status bar', 90_000, async () => {
    const t = await statusText(page);
    if (t && t.includes('nib: error')) {
      const last = events().filter((e) => e.event === 'status').pop();
      throw new Error(`the status bar shows an error: ${last?.status?.message ?? t}`);
    }
    return t && t.includes('nib: ready') ? t : null;
  }, 250);
  log(`status bar: ${text}`);
  if (!/CPU|CUDA/.test(text)) throw new Error(`status bar lacks the device: ${text}`);
});

if (suite === 'bundled') {
  test('the server the .vsix carries runs its own model, with no server installed or configured', async () => {
    const ready = events().find((e) => e.event === 'status' && e.status.state === 'ready');
    const want_model = path.join('server', 'share', 'nib', 'models', 'default');
    if (!ready?.status?.model?.includes(want_model)) throw new Error(`the server runs ${ready?.status?.model}, not the bundled ${want_model}`);
    const started = events().find((e) => e.event === 'started');
    const want = path.join('server', 'bin', 'nib');
    if (!started?.command?.startsWith(extensions) || !started.command.endsWith(want)) {
      throw new Error(`the extension started ${started?.command}, not the bundled ${want} under ${extensions}`);
    }
  });
}

test("workspace settings cannot choose the server's program, arguments or log file", async () => {
  // The status test above saw the real server ready, on the user's settings.
  for (const f of [`${planted}.ran`, `${planted}.log`]) {
    if (fs.existsSync(f)) throw new Error(`the workspace's settings were used: ${f} exists`);
  }
});

test('typing in a Python file shows ghost text; Tab accepts it; the saved file holds it', async (page) => {
  const before0 = 'def main():\n    ';
  const file = await openFile(page, 'main.py', before0);
  await sleep(500);
  const chars = suite === 'mock' ? 'x' : 'value = count + total';
  let typed = '';
  let shown = null;
  for (const ch of chars) {
    const seen = events().length;
    await page.keyboard.type(ch);
    typed += ch;
    // Wait for ghost text, or for an empty answer at this position (a random
    // model suggests nothing at some positions: then type on).
    const col = 4 + typed.length;
    const r = await waitFor('ghost text', 6000, async () => {
      const g = await ghostText(page);
      if (g) return { g };
      const empty = events().slice(seen).some((e) => e.event === 'inlineCompletion' && e.character === col && e.items.length === 0);
      return empty ? { g: null } : null;
    }, 100).catch(() => ({ g: null }));
    if (r.g) {
      shown = r.g;
      break;
    }
  }
  if (!shown) throw new Error(`no ghost text appeared after typing ${JSON.stringify(typed)}`);
  await sleep(300); // let rendering settle
  const ev = lastSuggestion();
  if (!ev) throw new Error('ghost text shows but the extension logged no suggestion');
  const suggestion = ev.items[0];
  log(`ghost text: ${JSON.stringify(shown)}; suggestion: ${JSON.stringify(suggestion)}`);
  await page.screenshot({ path: path.join(outDir, `ghost-text-${suite}.png`) });
  await page.keyboard.press('Tab');
  // Accepting moves the cursor, and VS Code at once asks for the next
  // suggestion, which may show before any "ghost text gone" check could run:
  // the file's content is the assertion. Escape drops that next suggestion.
  await sleep(300);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+S');
  const expected = normEol(before0 + typed + suggestion);
  const disk = await waitFor('the file on disk to hold the accepted text', 10_000, () => {
    const d = fs.readFileSync(file, 'utf8');
    return normEol(d) === expected ? d : null;
  }, 200).catch(() => {
    throw new Error(`file holds ${JSON.stringify(fs.readFileSync(file, 'utf8'))}, expected ${JSON.stringify(expected)}`);
  });
  if (!disk.startsWith(before0 + typed)) throw new Error('the typed text is not in the file');
});

async function runCommand(page, title) {
  for (let attempt = 0; attempt < 3; attempt++) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    try {
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 5000 });
      await input.fill(`>${title}`);
      await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${title}"]`, { timeout: 10_000 });
      await page.keyboard.press('Enter');
      return;
    } catch (e) {
      if (attempt === 2) throw e;
    }
  }
}

test('toggling completions off stops suggestions; on again brings them back', async (page) => {
  await openFile(page, 'toggle.py', 'def f():\n    ');
  let seen = events().length;
  await runCommand(page, 'nib: Toggle Inline Completions');
  // The extension sees the change (and sends the server `enable: false`).
  await waitFor('the extension to see completions off', 10_000, () =>
    events().slice(seen).some((e) => e.event === 'settingsChanged' && e.settings.enable === false));
  await sleep(300);
  seen = events().length;
  await page.keyboard.type(suite === 'mock' ? 'y' : 'value = count + total', { delay: 50 });
  await sleep(1500);
  if (await ghostText(page)) throw new Error('ghost text shows while completions are off');
  if (events().slice(seen).some((e) => e.event === 'inlineCompletion')) throw new Error('the extension still asked the server');
  seen = events().length;
  await runCommand(page, 'nib: Toggle Inline Completions');
  await waitFor('the extension to see completions on', 10_000, () =>
    events().slice(seen).some((e) => e.event === 'settingsChanged' && e.settings.enable !== false));
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.press('Control+S');
});

test('restarting the server comes back ready', async (page) => {
  const seen = events().length;
  await runCommand(page, 'nib: Restart Server');
  await waitFor('a new server to start', 30_000, () => events().slice(seen).some((e) => e.event === 'started'));
  await waitFor('"nib: ready" again', 60_000, async () => {
    const t = await statusText(page);
    const after = events().slice(seen).filter((e) => e.event === 'status').pop();
    return t && t.includes('nib: ready') && after && after.status.state === 'ready';
  }, 250);
});

test('a review diagnostic appears on the buggy line and its quick fix applies', async (page) => {
  const started = events().find((e) => e.event === 'started');
  if (!started) throw new Error('the server did not start');
  if (!(started.commands || []).includes('nib.reviewFile')) {
    return ['skip', 'the server does not offer nib.reviewFile yet'];
  }
  const content = 'def check(x):\n    if x == None:\n        return 0\n    return x\n';
  const file = await openFile(page, 'review.py', content);
  await sleep(500);
  await runCommand(page, 'nib: Review Current File');
  await waitFor('the review request', 60_000, () => events().some((e) => e.event === 'reviewRequested'));
  await waitFor('a review diagnostic', 20_000, () =>
    page.evaluate(() => document.querySelectorAll('.editor-instance .squiggly-warning, .editor-instance .squiggly-error, .editor-instance .squiggly-info').length > 0),
  );
  // The finding on line 2, as the extension received it.
  const diag = await waitFor('a nib diagnostic on line 2', 5000, () => {
    const ev = events().filter((e) => e.event === 'diagnostics' && e.uri.endsWith('/review.py')).pop();
    return ev?.diagnostics.find((d) => d.line === 1 && d.source === 'nib');
  });
  // Cursor onto the finding, then the quick fix menu.
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('ArrowDown');
  for (let i = 0; i <= diag.character; i++) await page.keyboard.press('ArrowRight');
  let applied = null;
  for (let attempt = 0; attempt < 4 && !applied; attempt++) {
    const seen = events().length;
    await page.keyboard.press('Control+.');
    try {
      const row = page.locator('.action-widget .monaco-list-row', { hasText: 'nib: ' }).first();
      await row.waitFor({ state: 'visible', timeout: 4000 });
      // What the offered fix will do, from the code actions the server answered.
      const offered = events().slice(seen).filter((e) => e.event === 'codeActions' && e.uri.endsWith('/review.py')).pop();
      const fix = offered?.actions.find((a) => a.title.startsWith('nib') && a.edits.length === 1);
      if (!fix) throw new Error('no nib code action was logged');
      await page.screenshot({ path: path.join(outDir, `review-quick-fix-${suite}.png`) });
      await row.click();
      applied = fix;
    } catch (e) {
      log(`quick fix attempt ${attempt + 1}: ${e.message}`);
      await page.keyboard.press('Escape');
      await sleep(500);
    }
  }
  if (!applied) throw new Error('the quick fix menu did not offer the fix');
  const [edit] = applied.edits;
  if (edit.line !== 1 || edit.endLine !== 1) throw new Error(`the fix edits ${JSON.stringify(edit)}, not line 2`);
  if (typeof diag.data?.replacement === 'string' && edit.newText !== diag.data.replacement) {
    throw new Error(`the fix inserts ${JSON.stringify(edit.newText)}; the diagnostic proposes ${JSON.stringify(diag.data.replacement)}`);
  }
  const lines = content.split('\n');
  lines[1] = lines[1].slice(0, edit.character) + edit.newText + lines[1].slice(edit.endCharacter);
  const expected = lines.join('\n');
  log(`applying ${JSON.stringify(applied.title)}`);
  await page.keyboard.press('Control+S');
  await waitFor('the fix on disk', 10_000, () => normEol(fs.readFileSync(file, 'utf8')) === expected, 200).catch(() => {
    throw new Error(`the file holds ${JSON.stringify(fs.readFileSync(file, 'utf8'))}, expected ${JSON.stringify(expected)}`);
  });
});

let failed = 0;
let page;
try {
  page = await setup();
  for (const t of tests) {
    const name = `vscode-${suite}: ${t.name}`;
    try {
      const r = await t.fn(page);
      if (Array.isArray(r) && r[0] === 'skip') result(`skip ${name}: ${r[1]}`);
      else result(`ok ${name}`);
    } catch (e) {
      failed++;
      result(`not ok ${name}: ${e && e.message ? e.message.split('\n')[0] : e}`);
      try {
        await page.screenshot({ path: path.join(outDir, `failure-${suite}-${tests.indexOf(t)}.png`) });
      } catch {}
    }
  }
} catch (e) {
  failed++;
  result(`not ok vscode-${suite}: setup: ${e && e.message ? e.message.split('\n')[0] : e}`);
  try {
    await page?.screenshot({ path: path.join(outDir, `failure-${suite}-setup.png`) });
  } catch {}
} finally {
  try {
    fs.copyFileSync(eventLog, path.join(outDir, `events-${suite}.jsonl`));
  } catch {}
  await cleanup();
  clearTimeout(hardTimeout);
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
