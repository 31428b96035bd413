// nib for VS Code: starts `nib serve --stdio` and lets vscode-languageclient
// wire its inline completions, completions, diagnostics and code actions.
// This file adds what the client does not: settings in nib's shape, a status
// bar item fed by $/progress and `nib/status`, per-language gating and the
// commands.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RequestType0,
  ServerOptions,
  State,
  Trace,
} from 'vscode-languageclient/node';

/** The answer to the custom `nib/status` request. */
interface NibStatus {
  state: 'loading' | 'ready' | 'error' | string;
  model?: string;
  device?: string;
  message?: string;
}

const StatusRequest = new RequestType0<NibStatus, void>('nib/status');

/**
 * A setting that chooses a program, its arguments or a file to write: only
 * the user's own value (or the default), never a workspace's, so that
 * opening a folder cannot make VS Code run something of that folder's
 * choosing, trusted or not. (A `machine` scope in the manifest would do
 * this in local VS Code, but remote hosts such as code-server then drop
 * the user's value too.)
 */
function userSetting<T>(key: string, fallback: T): T {
  const seen = vscode.workspace.getConfiguration('nib').inspect<T>(key);
  return seen?.globalValue ?? seen?.defaultValue ?? fallback;
}

/** nib's settings as the server reads them (initializationOptions and didChangeConfiguration). */
export function serverSettings(cfg = vscode.workspace.getConfiguration('nib')) {
  return {
    nib: {
      model: cfg.get<string>('model') || undefined,
      device: cfg.get<string>('device', 'auto'),
      threads: cfg.get<number | null>('threads', null) ?? null,
      // Which server nib talks to is the user's choice only: a workspace
      // could otherwise send its code to an address of its own.
      backend: userSetting<string>('backend', 'onnx'),
      server: {
        url: userSetting<string>('server.url', '') || null,
        model: userSetting<string>('server.model', '') || null,
        apiKeyEnv: userSetting<string>('server.apiKeyEnv', '') || null,
        timeoutMs: userSetting<number>('server.timeoutMs', 30000),
        fim: userSetting<string>('server.fim', 'nib'),
      },
      maxTokens: cfg.get<number>('maxTokens', 64),
      temperature: cfg.get<number>('temperature', 0),
      promptTokens: cfg.get<number>('promptTokens', 1024),
      contextFiles: cfg.get<number>('contextFiles', 3),
      debounceMs: cfg.get<number>('debounceMs', 75),
      // `false` when toggled off (the server then offers no completion menu items either).
      enable: cfg.get<boolean>('inlineCompletions.enable', true) ? cfg.get<Record<string, boolean>>('enable', { '*': true }) : false,
      review: {
        enable: cfg.get<boolean>('review.enable', true),
        // null: the server's default.
        minConfidence: cfg.get<number | null>('review.minConfidence', null) ?? null,
      },
    },
  };
}

function enabledFor(languageId: string): boolean {
  const cfg = vscode.workspace.getConfiguration('nib');
  if (!cfg.get<boolean>('inlineCompletions.enable', true)) return false;
  const map = cfg.get<Record<string, boolean>>('enable', { '*': true });
  const v = map[languageId] ?? map['*'];
  return v !== false;
}

/** A range for the event log. */
function plainRange(r: vscode.Range) {
  return { line: r.start.line, character: r.start.character, endLine: r.end.line, endCharacter: r.end.character };
}

/** Looks a command up on PATH the way spawn would. */
function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

class Nib {
  private client: LanguageClient | undefined;
  private readonly output = vscode.window.createOutputChannel('nib', { log: true });
  private readonly statusItem = vscode.window.createStatusBarItem('nib.status', vscode.StatusBarAlignment.Right, 100);
  private status: NibStatus = { state: 'stopped' };
  private progress: { message?: string; percentage?: number } | undefined;
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.statusItem.name = 'nib';
    this.statusItem.command = 'nib.showStatus';
    this.statusItem.show();
    context.subscriptions.push(this.output, this.statusItem);
    this.render();
  }

  /** Appends one JSON line to `nib.debug.eventLog`, when set. */
  event(name: string, data: Record<string, unknown> = {}) {
    const file = userSetting<string>('debug.eventLog', '');
    if (!file) return;
    try {
      fs.appendFileSync(file, JSON.stringify({ t: Date.now(), event: name, ...data }) + '\n');
    } catch (e) {
      this.output.appendLine(`cannot write the event log ${file}: ${e}`);
    }
  }

  private render() {
    const s = this.status;
    const item = this.statusItem;
    const on = vscode.workspace.getConfiguration('nib').get<boolean>('inlineCompletions.enable', true);
    const device = s.device ? (s.device.startsWith('cuda') ? s.device.replace('cuda', 'CUDA') : s.device.toUpperCase()) : '';
    const model = s.model ? path.basename(s.model) : '';
    item.backgroundColor = undefined;
    switch (s.state) {
      case 'ready':
        item.text = `$(${on ? 'check' : 'circle-slash'}) nib: ready` + [model, device].filter(Boolean).map((x) => ` · ${x}`).join('');
        break;
      case 'loading':
      case 'starting': {
        const pct = this.progress?.percentage !== undefined ? ` ${Math.round(this.progress.percentage)}%` : '';
        item.text = `$(sync~spin) nib: ${s.state}${pct}`;
        break;
      }
      case 'error':
        item.text = '$(error) nib: error';
        item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
      default:
        item.text = `$(circle-slash) nib: ${s.state}`;
    }
    const lines = [
      `**nib** — ${s.state}`,
      s.model ? `model: \`${s.model}\`` : '',
      s.device ? `device: ${s.device}` : '',
      s.message ? s.message : '',
      this.progress?.message && s.state === 'loading' ? this.progress.message : '',
      `inline completions: ${on ? 'on' : 'off'}`,
    ].filter(Boolean);
    item.tooltip = new vscode.MarkdownString(lines.join('\n\n'));
  }

  private setStatus(s: NibStatus) {
    const changed = JSON.stringify(s) !== JSON.stringify(this.status);
    this.status = s;
    if (changed) this.event('status', { status: s });
    this.render();
  }

  /** Asks the server for `nib/status` and schedules the next poll. */
  async refreshStatus(): Promise<NibStatus> {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    const client = this.client;
    if (!client || client.state !== State.Running) return this.status;
    try {
      this.setStatus(await client.sendRequest(StatusRequest));
    } catch (e) {
      this.output.appendLine(`nib/status failed: ${e}`);
    }
    // Poll fast while the model loads, slowly afterwards (device or model may change).
    const delay = this.status.state === 'loading' ? 1000 : 15000;
    this.pollTimer = setTimeout(() => void this.refreshStatus(), delay);
    return this.status;
  }

  /** The user's `nib.serverPath`, else the server a platform package carries, else `nib` on PATH. */
  private serverCommand(): string | undefined {
    const configured = userSetting<string>('serverPath', '').trim();
    if (configured) return configured.replace(/^~(?=$|\/)/, process.env.HOME || '~');
    // The release bundle's tree (bin/nib beside lib/nib and share/nib), which
    // finds its ONNX Runtime and model by its own path.
    const bundled = this.context.asAbsolutePath(path.join('server', 'bin', 'nib'));
    try {
      fs.accessSync(bundled, fs.constants.X_OK);
      return bundled;
    } catch {
      return onPath('nib');
    }
  }

  async start() {
    const cfg = vscode.workspace.getConfiguration('nib');
    const command = this.serverCommand();
    if (!command) {
      const msg = 'nib: the `nib` binary is not on the PATH of VS Code\'s extension host. Set `nib.serverPath` to its absolute path.';
      this.output.appendLine(msg);
      this.setStatus({ state: 'error', message: 'nib binary not found' });
      const pick = await vscode.window.showErrorMessage(msg, 'Open Settings');
      if (pick) void vscode.commands.executeCommand('workbench.action.openSettings', 'nib.serverPath');
      return;
    }
    const serverOptions: ServerOptions = {
      command,
      args: ['serve', '--stdio', ...userSetting<string[]>('serverArgs', [])],
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      initializationOptions: serverSettings(cfg),
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!enabledFor(document.languageId)) return undefined;
          const result = await next(document, position, context, token);
          const items = Array.isArray(result) ? result : result?.items ?? [];
          // Without a range VS Code replaces the word before the cursor and
          // drops items that do not start with it; nib's text goes at the cursor.
          for (const item of items) item.range ??= new vscode.Range(position, position);
          this.event('inlineCompletion', {
            uri: document.uri.toString(),
            line: position.line,
            character: position.character,
            items: items.map((i) => (typeof i.insertText === 'string' ? i.insertText : i.insertText.value)),
          });
          return result;
        },
        handleDiagnostics: (uri, diagnostics, next) => {
          this.event('diagnostics', {
            uri: uri.toString(),
            diagnostics: diagnostics.map((d) => ({
              ...plainRange(d.range),
              source: d.source,
              code: typeof d.code === 'object' ? d.code.value : d.code,
              message: d.message,
              // vscode-languageclient keeps the server's `data` on its diagnostics.
              data: (d as { data?: unknown }).data,
            })),
          });
          next(uri, diagnostics);
        },
        provideCodeActions: async (document, range, context, token, next) => {
          const actions = (await next(document, range, context, token)) ?? [];
          this.event('codeActions', {
            uri: document.uri.toString(),
            actions: actions.map((a) => ({
              title: a.title,
              edits: 'edit' in a && a.edit
                ? a.edit.entries().flatMap(([u, edits]) => edits.map((e) => ({ uri: u.toString(), ...plainRange(e.range), newText: e.newText })))
                : [],
            })),
          });
          return actions;
        },
        handleWorkDoneProgress: (token, params, next) => {
          if (params.kind === 'end') {
            this.progress = undefined;
            void this.refreshStatus();
          } else {
            this.progress = { ...this.progress, message: params.message ?? this.progress?.message, percentage: params.percentage };
            if (params.kind === 'begin') this.progress.message = params.title + (params.message ? `: ${params.message}` : '');
            if (this.status.state !== 'ready') this.setStatus({ ...this.status, state: 'loading' });
            this.render();
          }
          next(token, params);
        },
        workspace: {
          // Answer workspace/configuration for "nib" in the server's shape.
          configuration: (params, token, next) => {
            const plain = params.items.map((i) => (i.section === 'nib' ? serverSettings().nib : undefined));
            if (params.items.every((i) => i.section === 'nib')) return plain;
            return next(params, token);
          },
        },
      },
    };
    this.client = new LanguageClient('nib', 'nib', serverOptions, clientOptions);
    this.client.onDidChangeState((e) => {
      this.event('clientState', { state: State[e.newState] });
      if (e.newState === State.Stopped && this.status.state !== 'error') this.setStatus({ state: 'stopped' });
    });
    this.setStatus({ state: 'starting' });
    this.output.appendLine(`starting ${command} ${(serverOptions as { args: string[] }).args.join(' ')}`);
    try {
      await this.client.start();
      const trace = cfg.get<string>('trace.server', 'off');
      await this.client.setTrace(Trace.fromString(trace));
      this.event('started', { command, commands: this.serverCommands() });
      this.setStatus({ state: 'loading' });
      await this.refreshStatus();
    } catch (e) {
      this.output.appendLine(`the server failed to start: ${e}`);
      this.setStatus({ state: 'error', message: String(e) });
      void vscode.window.showErrorMessage(`nib: the server failed to start: ${e}`, 'Show Logs').then((pick) => {
        if (pick) this.output.show();
      });
    }
  }

  async stop() {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) {
      try {
        await client.stop(5000);
      } catch (e) {
        this.output.appendLine(`stopping the server: ${e}`);
      }
    }
    this.setStatus({ state: 'stopped' });
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Sends the settings to the running server. */
  pushSettings() {
    this.render();
    const client = this.client;
    if (client && client.state === State.Running) {
      void client.sendNotification('workspace/didChangeConfiguration', { settings: serverSettings() });
    }
  }

  async toggleCompletions() {
    const cfg = vscode.workspace.getConfiguration('nib');
    const on = !cfg.get<boolean>('inlineCompletions.enable', true);
    await cfg.update('inlineCompletions.enable', on, vscode.ConfigurationTarget.Global);
    vscode.window.setStatusBarMessage(`nib: inline completions ${on ? 'on' : 'off'}`, 3000);
  }

  /** The commands the server offers through workspace/executeCommand. */
  private serverCommands(): string[] {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  }

  async reviewFile(uri?: vscode.Uri) {
    const target = uri ?? vscode.window.activeTextEditor?.document.uri;
    if (!target) {
      void vscode.window.showInformationMessage('nib: open a file to review.');
      return;
    }
    const client = this.client;
    if (!client || client.state !== State.Running) {
      void vscode.window.showWarningMessage('nib: the server is not running.');
      return;
    }
    if (!this.serverCommands().includes('nib.reviewFile')) {
      void vscode.window.showWarningMessage('nib: this server does not review files (nib.reviewFile); update nib.');
      this.event('reviewUnsupported', { uri: target.toString() });
      return;
    }
    try {
      // Answered once the review ended; the findings arrive as diagnostics.
      const result = await client.sendRequest(ExecuteCommandRequest.type, { command: 'nib.reviewFile', arguments: [target.toString()] });
      this.event('reviewRequested', { uri: target.toString(), result });
      if (result && typeof result === 'object' && result.state === 'published') {
        const n = Number(result.findings ?? 0);
        vscode.window.setStatusBarMessage(`nib: review found ${n} issue${n === 1 ? '' : 's'}`, 5000);
      }
    } catch (e) {
      void vscode.window.showErrorMessage(`nib: review failed: ${e instanceof Error ? e.message : e}`);
    }
  }

  async showStatus() {
    const s = await this.refreshStatus();
    const on = vscode.workspace.getConfiguration('nib').get<boolean>('inlineCompletions.enable', true);
    const picks: (vscode.QuickPickItem & { command?: string })[] = [
      { label: `nib: ${s.state}`, description: [s.model, s.device].filter(Boolean).join(' · '), detail: s.message },
      { label: on ? '$(circle-slash) Turn inline completions off' : '$(check) Turn inline completions on', command: 'nib.toggleCompletions' },
      { label: '$(search) Review current file', command: 'nib.reviewCurrentFile' },
      { label: '$(debug-restart) Restart server', command: 'nib.restartServer' },
      { label: '$(output) Show logs', command: 'nib.showLogs' },
    ];
    const pick = await vscode.window.showQuickPick(picks, { title: 'nib' });
    if (pick?.command) void vscode.commands.executeCommand(pick.command);
  }

  showLogs() {
    this.output.show(true);
  }
}

let nib: Nib | undefined;

export async function activate(context: vscode.ExtensionContext) {
  nib = new Nib(context);
  const n = nib;
  context.subscriptions.push(
    vscode.commands.registerCommand('nib.toggleCompletions', () => n.toggleCompletions()),
    vscode.commands.registerCommand('nib.reviewCurrentFile', (uri?: vscode.Uri) => n.reviewFile(uri)),
    vscode.commands.registerCommand('nib.restartServer', () => n.restart()),
    vscode.commands.registerCommand('nib.showLogs', () => n.showLogs()),
    vscode.commands.registerCommand('nib.showStatus', () => n.showStatus()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('nib')) return;
      n.event('settingsChanged', { settings: serverSettings().nib });
      if (e.affectsConfiguration('nib.serverPath') || e.affectsConfiguration('nib.serverArgs')) {
        void n.restart();
      } else {
        n.pushSettings();
      }
    }),
  );
  n.event('activated');
  await n.start();
}

export async function deactivate() {
  await nib?.stop();
}
