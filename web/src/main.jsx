// Entry point of the GraphiQL bundle that cityhub embeds (see ../web.go).
//
// The page is configured by data attributes on the #graphiql element, which
// web.Handler fills in from its Config:
//
//   data-endpoint       GraphQL endpoint, relative to the page (default /graphql)
//   data-default-query  JSON string literal: the query shown on first visit
//
// Everything here is bundled by build.mjs; the page loads nothing from any
// other host. Subscriptions go over graphql-ws to the same host, and the
// websocket is opened only when a subscription runs.
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createRoot } from 'react-dom/client';

import 'graphiql/graphiql.css';
import '@graphiql/plugin-explorer/dist/style.css';
import './main.css';

const DEFAULT_ENDPOINT = '/graphql';

// readConfig returns the endpoint and default query from the root element.
function readConfig(el) {
  const endpoint = el.dataset.endpoint || DEFAULT_ENDPOINT;
  let defaultQuery;
  const raw = el.dataset.defaultQuery;
  if (raw) {
    try {
      const parsed = JSON.parse(raw);
      if (typeof parsed === 'string') defaultQuery = parsed;
    } catch (err) {
      console.error('graphiql: data-default-query is not a JSON string', err);
    }
  }
  return { endpoint, defaultQuery };
}

// wsURL turns an http(s) endpoint into the ws(s) URL of the same path.
function wsURL(endpoint) {
  const u = new URL(endpoint, window.location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.hash = '';
  return u.toString();
}

function main() {
  const el = document.getElementById('graphiql');
  if (!el) {
    throw new Error('graphiql: no #graphiql element on the page');
  }
  const { endpoint, defaultQuery } = readConfig(el);
  const fetcher = createGraphiQLFetcher({
    url: new URL(endpoint, window.location.href).toString(),
    subscriptionUrl: wsURL(endpoint),
  });
  // Plugins are created once: GraphiQL compares them by identity.
  const plugins = [explorerPlugin()];
  createRoot(el).render(
    <GraphiQL
      fetcher={fetcher}
      plugins={plugins}
      defaultQuery={defaultQuery}
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
    />,
  );
}

main();
