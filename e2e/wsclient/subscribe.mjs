// Usage: node subscribe.mjs (graphql-ws|legacy) URL QUERY COUNT
// Subscribes with the given client, prints "ready" once the server has
// acknowledged the connection, then one JSON line per result (data or
// errors), and exits after COUNT results, on completion or on error
// (printing "complete" or "error <json>").
import WebSocket from "ws";
import { createClient } from "graphql-ws";
import pkg from "subscriptions-transport-ws";
const { SubscriptionClient } = pkg;

const [client, url, query, count] = process.argv.slice(2);
let left = Number(count);
const out = (line) => process.stdout.write(line + "\n");
const done = (code) => setTimeout(() => process.exit(code), 10);
const deadline = setTimeout(() => { out("timeout"); process.exit(2); }, 60_000);
deadline.unref();

if (client === "graphql-ws") {
  const c = createClient({
    url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false,
    on: { connected: () => out("ready") },
  });
  c.subscribe({ query }, {
    next: (r) => { out(JSON.stringify(r)); if (--left <= 0) { c.dispose(); done(0); } },
    error: (e) => { out("error " + JSON.stringify(e?.message ?? e)); done(1); },
    complete: () => { out("complete"); done(0); },
  });
} else if (client === "legacy") {
  const c = new SubscriptionClient(url, { reconnect: false, connectionCallback: (err) => out(err ? "error " + JSON.stringify(err) : "ready") }, WebSocket);
  c.request({ query }).subscribe({
    next: (r) => { out(JSON.stringify(r)); if (--left <= 0) { c.close(); done(0); } },
    error: (e) => { out("error " + JSON.stringify(e?.message ?? e)); done(1); },
    complete: () => { out("complete"); done(0); },
  });
} else {
  out("unknown client " + client);
  process.exit(2);
}
