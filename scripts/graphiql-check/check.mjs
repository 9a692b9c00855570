#!/usr/bin/env node
// check.mjs opens cityhub's GraphiQL page in headless Chromium, runs a query
// and fails if the page asks any host but its own for anything.
//
// Usage:
//
//   node check.mjs URL [QUERY] [--screenshot PATH] [--timeout MS] [--chromium PATH]
//
// URL is the page (e.g. http://127.0.0.1:8080/). QUERY replaces the editor
// contents; without it the page's default query runs. Every request the
// page makes is recorded (and aborted when it goes to another host); the
// check fails on any such request, on a Content-Security-Policy violation,
// on an uncaught page error, or when no result with "data" arrives. It prints
// one line of JSON, {"requests":n,"external":0,"resultBytes":n,"ok":true},
// and exits 1 on failure. Chromium is Debian's (scripts/install-chromium.sh);
// no browser is downloaded.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const usage = 'usage: node check.mjs URL [QUERY] [--screenshot PATH] [--timeout MS] [--chromium PATH]';

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      screenshot: { type: 'string' },
      timeout: { type: 'string', default: '30000' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length < 1 || positionals.length > 2) {
    throw new Error(usage);
  }
  const url = new URL(positionals[0]);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`check: URL ${url} is not http(s)`);
  }
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new Error(`check: --timeout ${values.timeout} is not a positive number of milliseconds`);
  }
  return {
    url,
    query: positionals[1],
    screenshot: values.screenshot,
    timeout,
    executablePath: values.chromium,
  };
}

// Schemes that never reach the network.
const localSchemes = new Set(['data:', 'blob:', 'about:']);

async function run(opts, summary) {
  const host = opts.url.host;
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'graphiql-check-'));
  const external = [];
  const problems = [];
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.executablePath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Belt and braces: the browser cannot even resolve another name.
        `--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE ${opts.url.hostname}`,
      ],
      viewport: { width: 1400, height: 900 },
      timeout: opts.timeout,
    });
    context.setDefaultTimeout(opts.timeout);

    const record = (u, kind) => {
      const parsed = new URL(u);
      if (localSchemes.has(parsed.protocol)) return true;
      summary.requests++;
      if (parsed.host !== host) {
        external.push(`${kind} ${u}`);
        summary.external = external.length;
        return false;
      }
      return true;
    };
    // Record every request of every page and worker; abort the external ones
    // so nothing leaves the machine even when the check is about to fail.
    await context.route('**/*', (route) => {
      const req = route.request();
      if (record(req.url(), req.resourceType())) return route.continue();
      return route.abort('blockedbyclient');
    });
    await context.routeWebSocket(/.*/, (ws) => {
      if (record(ws.url(), 'websocket')) {
        ws.connectToServer();
      } else {
        ws.close({ code: 1008, reason: 'external host' });
      }
    });
    // Content-Security-Policy violations are reported from inside the page.
    await context.exposeBinding('__graphiqlCheckCSP', (_source, v) => {
      problems.push(`csp violation: ${v}`);
    });
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__graphiqlCheckCSP(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`);
      });
    });

    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

    const res = await page.goto(opts.url.toString(), { waitUntil: 'load' });
    if (!res || !res.ok()) {
      throw new Error(`check: GET ${opts.url} answered ${res ? res.status() : 'nothing'}`);
    }
    const editor = '.graphiql-query-editor .CodeMirror';
    await page.locator(editor).waitFor({ state: 'visible' });
    // The schema arrives by introspection; wait for it so the run button
    // executes against a known schema.
    await page.waitForFunction(() => !document.querySelector('.graphiql-spinner'), null, {
      timeout: opts.timeout,
    });

    if (opts.query !== undefined) {
      await page.evaluate(
        ([sel, q]) => document.querySelector(sel).CodeMirror.setValue(q),
        [editor, opts.query],
      );
      // GraphiQL takes in an edit after a 100 ms debounce (operation name,
      // tab state); the same handler stores the query, so wait for that and
      // for React to render the new state before running.
      await page.waitForFunction(
        (q) => window.localStorage.getItem('graphiql:query') === q,
        opts.query,
        { timeout: opts.timeout, polling: 50 },
      );
      await page.evaluate(
        () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
      );
    }
    await page.locator('.graphiql-execute-button').click();

    const resultSel = '.graphiql-response .result-window .CodeMirror';
    // Wait for a result; one without "data" (a request or GraphQL error)
    // fails at once instead of at the timeout.
    const handle = await page.waitForFunction(
      (sel) => {
        const cm = document.querySelector(sel)?.CodeMirror;
        const text = cm ? cm.getValue() : '';
        return text.includes('"data"') || text.includes('"errors"') || text.includes('"message"')
          ? text
          : null;
      },
      resultSel,
      { timeout: opts.timeout, polling: 100 },
    );
    const result = await handle.jsonValue();
    summary.resultBytes = Buffer.byteLength(result, 'utf8');
    if (!result.includes('"data"')) {
      problems.push(`result has no "data": ${result.replace(/\s+/g, ' ').slice(0, 500)}`);
    }

    if (opts.screenshot) {
      await page.screenshot({ path: opts.screenshot, fullPage: true });
    }
    for (const e of external) problems.push(`external request: ${e}`);
    if (problems.length > 0) {
      throw new Error(problems.join('\n'));
    }
    summary.ok = true;
  } catch (err) {
    if (context && opts.screenshot) {
      const page = context.pages()[0];
      await page?.screenshot({ path: opts.screenshot, fullPage: true }).catch(() => {});
    }
    // Keep what was seen before the failure: external requests matter most.
    const seen = [...external.map((e) => `external request: ${e}`), ...problems];
    const message = err.message ?? String(err);
    throw new Error([message, ...seen.filter((p) => !message.includes(p))].join('\n'));
  } finally {
    await context?.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true });
  }
}

const summary = { requests: 0, external: 0, resultBytes: 0, ok: false };
try {
  const opts = parse(process.argv.slice(2));
  await run(opts, summary);
  console.log(JSON.stringify(summary));
} catch (err) {
  console.error(err.message ?? String(err));
  console.log(JSON.stringify(summary));
  process.exitCode = 1;
}
