/**
 * Drives a headless Chromium over the Chrome DevTools Protocol with nothing
 * but `Deno.Command` and the built-in `WebSocket`: launch, open a page,
 * evaluate expressions, wait for a condition, take a screenshot. Used by the
 * dashboard's browser test and by `deno task screenshot`.
 *
 * @module
 */

const CANDIDATES = [
  "chromium",
  "chromium-browser",
  "google-chrome",
  "google-chrome-stable",
  "chrome",
  "headless_shell",
];

/**
 * The path of a Chromium (or Chrome) executable: `$CHROMIUM_PATH`, else the
 * first of the usual names on `$PATH`; `undefined` when there is none.
 */
export function findChromium(): string | undefined {
  const explicit = readEnv("CHROMIUM_PATH");
  if (explicit) return explicit;
  for (const dir of (readEnv("PATH") ?? "").split(":")) {
    for (const name of CANDIDATES) {
      const path = `${dir}/${name}`;
      try {
        if (Deno.statSync(path).isFile) return path;
      } catch {
        // Not there, or not readable: try the next one.
      }
    }
  }
  return undefined;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** What went wrong in a page: exceptions, console errors, CSP violations. */
export interface PageProblem {
  readonly source: string;
  readonly text: string;
}

/** Options of {@linkcode Chromium.launch}. */
export interface LaunchOptions {
  /** The executable; {@linkcode findChromium} when not given. */
  readonly path?: string;
  /** How long to wait for the DevTools endpoint, in milliseconds. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly resolve: (value: Record<string, unknown>) => void;
  readonly reject: (error: Error) => void;
  readonly method: string;
}

/** A headless Chromium and its DevTools connection. Close it with `await using`. */
export class Chromium implements AsyncDisposable {
  readonly #process: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #userDataDir: string;
  readonly #stderrDrained: Promise<void>;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(message: Record<string, unknown>) => void>();
  #nextId = 1;
  #closed = false;

  private constructor(
    process: Deno.ChildProcess,
    socket: WebSocket,
    userDataDir: string,
    stderrDrained: Promise<void>,
  ) {
    this.#process = process;
    this.#socket = socket;
    this.#userDataDir = userDataDir;
    this.#stderrDrained = stderrDrained;
    socket.onmessage = (event) => this.#receive(JSON.parse(String(event.data)));
    socket.onclose = () => {
      for (const pending of this.#pending.values()) {
        pending.reject(new Error(`The browser went away during ${pending.method}`));
      }
      this.#pending.clear();
    };
  }

  /** Starts a headless Chromium and connects to its DevTools endpoint. */
  static async launch(options: LaunchOptions = {}): Promise<Chromium> {
    const path = options.path ?? findChromium();
    if (path === undefined) throw new Error("Cannot find a Chromium executable");
    const userDataDir = await Deno.makeTempDir({ prefix: "wasmplug-chromium-" });
    const process = new Deno.Command(path, {
      args: [
        "--headless=new",
        "--remote-debugging-port=0",
        `--user-data-dir=${userDataDir}`,
        "--no-sandbox",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--hide-scrollbars",
        "--mute-audio",
        "--force-color-profile=srgb",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let endpoint: string | undefined;
    let output = "";
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      while (endpoint === undefined) {
        const read = await Promise.race([lines.read(), timedOut]);
        if (read === "timeout" || read.done) break;
        output += read.value;
        endpoint = output.match(/DevTools listening on (ws:\/\/\S+)/)?.[1];
      }
    } finally {
      clearTimeout(timer);
    }
    // Keep reading stderr, or Chromium blocks once the pipe is full.
    const stderrDrained = (async () => {
      try {
        while (!(await lines.read()).done) { /* discard */ }
      } catch {
        // The process ended.
      }
    })();
    if (endpoint === undefined) {
      process.kill("SIGKILL");
      await process.status;
      await stderrDrained;
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
      throw new Error(`Chromium printed no DevTools endpoint: ${output.slice(-2000)}`);
    }
    const socket = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`Cannot connect to ${endpoint}`));
    });
    return new Chromium(process, socket, userDataDir, stderrDrained);
  }

  /** Sends a DevTools command and returns its result. */
  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#socket.send(
        JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }),
      );
    });
  }

  /** Calls `listener` with every DevTools event until the browser closes. */
  onEvent(listener: (message: Record<string, unknown>) => void): void {
    this.#listeners.add(listener);
  }

  #receive(message: Record<string, unknown>): void {
    if (typeof message.id === "number") {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      const error = message.error as { message?: string } | undefined;
      if (error !== undefined) {
        pending?.reject(new Error(`${pending.method}: ${error.message ?? JSON.stringify(error)}`));
      } else pending?.resolve((message.result ?? {}) as Record<string, unknown>);
      return;
    }
    for (const listener of this.#listeners) listener(message);
  }

  /** Opens a tab of `width` × `height` CSS pixels and navigates it to `url`. */
  async open(url: string | URL, size = { width: 1280, height: 800 }): Promise<BrowserPage> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new BrowserPage(this, String(sessionId));
    await page.start(size);
    await page.navigate(url);
    return page;
  }

  /** Closes the browser and removes its profile. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.race([
      this.send("Browser.close").catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ]);
    const exited = await Promise.race([
      this.#process.status.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5000)),
    ]);
    if (!exited) {
      this.#process.kill("SIGKILL");
      await this.#process.status;
    }
    if (this.#socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => this.#socket.addEventListener("close", resolve));
      this.#socket.close();
      await closed;
    }
    await this.#stderrDrained;
    await Deno.remove(this.#userDataDir, { recursive: true }).catch(() => {});
  }

  /** `await using browser = await Chromium.launch()` closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The fields of the DevTools events a page listens to. */
interface EventParams {
  readonly exceptionDetails?: { text?: string; exception?: { description?: string } };
  readonly type?: string;
  readonly args?: unknown[];
  readonly entry?: { level?: string; source?: string; text?: string };
  readonly message?: string;
}

/** One tab, driven through its DevTools session. */
export class BrowserPage {
  readonly #browser: Chromium;
  readonly #sessionId: string;
  /** Exceptions, console errors and CSP violations seen so far. */
  readonly problems: PageProblem[] = [];
  /** Messages of `alert()`, `confirm()` and `prompt()` dialogs opened (and dismissed). */
  readonly dialogs: string[] = [];

  /** Made by {@linkcode Chromium.open}. */
  constructor(browser: Chromium, sessionId: string) {
    this.#browser = browser;
    this.#sessionId = sessionId;
  }

  /** Enables the domains the page reports problems through, and sets the viewport. */
  async start(size: { width: number; height: number }): Promise<void> {
    this.#browser.onEvent((message) => {
      if (message.sessionId !== this.#sessionId) return;
      const params = (message.params ?? {}) as EventParams;
      switch (message.method) {
        case "Runtime.exceptionThrown":
          this.problems.push({
            source: "exception",
            text: String(
              params.exceptionDetails?.exception?.description ?? params.exceptionDetails?.text,
            ),
          });
          break;
        case "Runtime.consoleAPICalled":
          if (params.type === "error") {
            this.problems.push({ source: "console", text: JSON.stringify(params.args) });
          }
          break;
        case "Log.entryAdded":
          if (params.entry?.level === "error") {
            this.problems.push({
              source: String(params.entry.source),
              text: String(params.entry.text),
            });
          }
          break;
        case "Page.javascriptDialogOpening":
          this.dialogs.push(String(params.message));
          void this.send("Page.handleJavaScriptDialog", { accept: false }).catch(() => {});
          break;
      }
    });
    await this.send("Page.enable");
    await this.send("Runtime.enable");
    await this.send("Log.enable");
    await this.send("Emulation.setDeviceMetricsOverride", {
      ...size,
      deviceScaleFactor: 1,
      mobile: false,
    });
    await this.send("Emulation.setEmulatedMedia", {
      features: [{ name: "prefers-color-scheme", value: "light" }],
    });
  }

  /** Sends a DevTools command to this tab. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#browser.send(method, params, this.#sessionId);
  }

  /** Loads `url` and waits until the document is complete. */
  async navigate(url: string | URL): Promise<void> {
    const { errorText } = await this.send("Page.navigate", { url: String(url) });
    if (errorText) throw new Error(`Cannot open ${url}: ${errorText}`);
    await this.waitFor("document.readyState === 'complete'");
  }

  /** The value of a JavaScript expression evaluated in the page (promises awaited). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const result = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    const details = result.exceptionDetails as {
      text?: string;
      exception?: { description?: string };
    };
    if (details !== undefined) {
      throw new Error(`${expression}: ${details.exception?.description ?? details.text}`);
    }
    return (result.result as { value?: T }).value as T;
  }

  /** Polls `expression` until it is truthy; throws after `timeoutMs`. */
  async waitFor(expression: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${expression}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A PNG of the whole page (the viewport grown to the content's height). */
  async screenshot(): Promise<Uint8Array> {
    const metrics = await this.send("Page.getLayoutMetrics");
    const content = metrics.cssContentSize as { width: number; height: number };
    const viewport = metrics.cssLayoutViewport as { clientWidth: number };
    await this.send("Emulation.setDeviceMetricsOverride", {
      width: viewport.clientWidth,
      height: Math.ceil(content.height),
      deviceScaleFactor: 1,
      mobile: false,
    });
    const { data } = await this.send("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(String(data)), (c) => c.charCodeAt(0));
  }
}
