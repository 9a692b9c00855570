// Apollo Gateway for e2e/federation_test.go: composes the supergraph of the
// subgraphs it is given by introspecting them (IntrospectAndCompose) and
// serves it.
//
//   node gateway.mjs --subgraph cityhub=http://127.0.0.1:8080/graphql \
//                    --subgraph permits=http://127.0.0.1:4001/ [--port 0]
//
// Prints "ready <url>" on standard output once it listens on 127.0.0.1;
// exits non-zero when composition fails.
import { parseArgs } from 'node:util';
import { ApolloGateway, IntrospectAndCompose } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

const { values: args } = parseArgs({
  options: {
    subgraph: { type: 'string', multiple: true, default: [] },
    port: { type: 'string', default: '0' },
  },
});
const subgraphs = args.subgraph.map((s) => {
  const i = s.indexOf('=');
  if (i <= 0) {
    console.error(`gateway: --subgraph ${s}: want name=url`);
    process.exit(2);
  }
  return { name: s.slice(0, i), url: s.slice(i + 1) };
});
if (subgraphs.length === 0) {
  console.error('gateway: no --subgraph');
  process.exit(2);
}

const gateway = new ApolloGateway({ supergraphSdl: new IntrospectAndCompose({ subgraphs }) });
const server = new ApolloServer({ gateway });
let url;
try {
  ({ url } = await startStandaloneServer(server, {
    listen: { host: '127.0.0.1', port: Number(args.port) },
  }));
} catch (err) {
  console.error(`gateway: ${err.stack ?? err}`);
  for (const cause of err.causes ?? []) {
    console.error(`  ${cause.message ?? cause}`);
  }
  process.exit(1);
}
console.log(`ready ${url}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await server.stop();
    process.exit(0);
  });
}
