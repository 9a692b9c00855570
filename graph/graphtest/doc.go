// Package graphtest is the conformance suite every graph.Store backend
// passes: Run executes the cases, Bench the benchmarks. It ships in a
// non-test package so that backends import it from their own tests:
//
//	func TestConformance(t *testing.T) {
//		graphtest.Run(t, func(t testing.TB) graph.Store { return openStore(t, graphtest.Ontology()) })
//	}
//
// Each case gets a fresh, empty store from the factory, which must close it
// with t.Cleanup. The suite has its own ontology (Ontology, ontology.yaml)
// and states the contract by example. The filter semantics it checks, which
// every backend must implement exactly:
//
//   - A comparison (eq, ne, lt, lte, gt, gte, in, contains, startsWith)
//     against a null or missing property never matches. Not is the exact
//     complement of its operand, so Not{Cmp{f, eq, v}} matches the nodes
//     where f is null. ne is "not null and different": it does not match nulls.
//   - in with an empty list matches nothing (and Not of it matches all).
//     An empty And matches all, an empty Or nothing, a nil filter all.
//   - eq, ne, in and the order comparisons compare strings (and enum
//     values, and id, class, _source) by Unicode code point, case-sensitively;
//     Int and Float compare numerically with each other (an Int property
//     against 1.5, a Float property against int64 2); DateTime values
//     compare as instants whatever their zone (stored at microsecond
//     precision, UTC); Boolean supports only eq, ne, in and isNull.
//   - contains is a case-insensitive substring test: both sides are
//     lower-cased character by character with the Unicode simple lower-case
//     mapping (Go strings.ToLower, Cypher toLower), then compared. So "Ä"
//     matches "ä" and "ẞ" matches "ß", but "ß" does not match "SS" (no full
//     case folding). The empty string matches every non-null string.
//   - startsWith is a case-sensitive prefix test on the raw string.
//   - A list property matches eq, in, contains, startsWith, lt, lte, gt and
//     gte when at least one element does; ne on a list matches when the
//     list is not null and no element equals the value. An empty list is
//     stored as null (absent).
//   - isNull takes a bool: true matches null/absent, false non-null.
//   - JSON properties support only isNull; lists and JSON cannot be ordered,
//     grouped or aggregated.
//   - Values are literal: quotes, backticks, braces, %, _, backslashes and
//     SQL or Cypher keywords have no special meaning anywhere.
//   - Near matches located nodes whose representative point is within
//     Meters of the centre by great-circle distance (graph/geo.Distance); a
//     point exactly on the radius matches; a centre off the globe or a
//     negative, NaN or infinite distance is ErrInvalid. Within matches points in the
//     box, edges included. WithinArea matches points inside the polygon
//     geometry of the area node (graph/geo.Shape.Contains: holes excluded);
//     an unknown area or one without polygons matches nothing. Nodes
//     without geometry match none of them.
//   - Search matches nodes whose searchable properties (the ontology marks
//     them) contain every whitespace-separated word of the text as a
//     substring, with contains's case rule; blank text matches all.
//   - Unknown classes, fields, relations and operators, values of the wrong
//     type and bad cursors are graph.ErrInvalid.
//
// Ordering: by any scalar property or id, class, _source, _fetchedAt,
// _ingestedAt, _validFrom, _validTo; nulls sort last in both directions;
// ties by ID ascending. Paging is keyset-based: a page fetched with After
// continues exactly after the cursor's row even if rows were inserted or
// deleted before it. First must be at least 1 (else ErrInvalid) in Find,
// Neighbors and Near. Neighbors pages count their totals; a missing parent
// has an empty page. Aggregate sorts groups by key with the null group
// last; without GroupBy it returns exactly one group.
//
// No backend differences are tolerated yet, so there is no Options type;
// when one is needed it becomes a named boolean there, never a backend
// check inside a case.
//
// Writes (Apply):
//
//   - One batch is one transaction: any error (graph.ErrInvalid for data
//     that does not fit the ontology, graph.ErrConflict for data that
//     contradicts what is stored) leaves nothing written and no event.
//   - Validation: the class exists and is concrete; every property exists on
//     the class (own or inherited) with exactly the Go type of its ontology
//     type (string, int64, float64 finite, bool, time.Time, []any of those
//     for lists, map[string]any for JSON; enum values among the enum's);
//     required properties are present; geometry only on located classes,
//     with WGS84 coordinates. A node ID stored with another class is a
//     conflict. An edge's relation exists, its properties fit the
//     relation, its endpoints exist after the batch's node upserts
//     (missing: ErrInvalid) and have classes the relation allows,
//     subclasses included (otherwise ErrConflict).
//   - An upsert replaces the node's properties and geometry. Writing what
//     is stored again produces no event and no change, even from another
//     connector run (connector, run and fetched-at are bookkeeping).
//   - A record whose srcUpdatedAt is older than the stored one is ignored;
//     an unknown (zero) srcUpdatedAt counts as older than any known one.
//   - Events come in batch order: node upserts (CREATE, UPDATE), edge
//     upserts (EDGE_ADD, EDGE_UPDATE), edge deletes (EDGE_REMOVE), node
//     deletes (EDGE_REMOVE for each of the node's edges, then DELETE).
//     Deleting what does not exist is no event. Edge events carry the
//     edge's source node and its class. Seq increases strictly across
//     every Apply of a store, also across restarts.
//   - Changed lists the changed property names (all set properties on
//     CREATE and EDGE_ADD), "location" when the geometry changed, and the
//     provenance fields _source, _sourceKey, _sources, _validFrom and
//     _validTo when they changed.
//   - Times are kept at microsecond precision; IngestedAt is set by the store.
package graphtest
