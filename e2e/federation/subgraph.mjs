// A second Apollo Federation 2 subgraph for e2e/federation_test.go: road
// permits, read from a JSON file keyed by cityhub Neighbourhood ID. It
// extends cityhub's Neighbourhood entity with roadPermits and gives every
// permit its Neighbourhood, which the gateway resolves through cityhub's
// _entities.
//
//   node subgraph.mjs --permits permits.json [--port 0]
//
// Prints "ready <url>" on standard output once it listens on 127.0.0.1.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const { values: args } = parseArgs({
  options: {
    permits: { type: 'string' },
    port: { type: 'string', default: '0' },
  },
});
if (!args.permits) {
  console.error('subgraph: --permits is required');
  process.exit(2);
}

// { "<neighbourhood id>": [ { "number": ..., ... } ] }
const byNeighbourhood = JSON.parse(await readFile(args.permits, 'utf8'));
const all = Object.entries(byNeighbourhood).flatMap(([id, permits]) =>
  permits.map((p) => ({ ...p, neighbourhoodId: id })),
);

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  "A neighbourhood of cityhub (the entity is cityhub's; this subgraph adds its road permits)."
  type Neighbourhood @key(fields: "id") {
    id: ID!
    "Permits for work on the roads of the neighbourhood, by number."
    roadPermits: [RoadPermit!]!
  }

  "A permit to work on or occupy a road."
  type RoadPermit {
    number: String!
    street: String!
    work: String!
    "First day, YYYY-MM-DD."
    validFrom: String!
    "Last day, YYYY-MM-DD."
    validTo: String!
    "Where the work is."
    neighbourhood: Neighbourhood!
  }

  type Query {
    "Every permit, by number."
    roadPermits: [RoadPermit!]!
  }
`);

const byNumber = (a, b) => a.number.localeCompare(b.number);

const resolvers = {
  Query: {
    roadPermits: () => [...all].sort(byNumber),
  },
  Neighbourhood: {
    __resolveReference: (ref) => ({ id: ref.id }),
    roadPermits: (n) => [...(byNeighbourhood[n.id] ?? [])].sort(byNumber),
  },
  RoadPermit: {
    neighbourhood: (p) => ({ __typename: 'Neighbourhood', id: p.neighbourhoodId }),
  },
};

const server = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(args.port) },
});
console.log(`ready ${url}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await server.stop();
    process.exit(0);
  });
}
