package e2e

import (
	"context"
	"testing"
	"time"

	neo4jdrv "github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// MustWipeNeo4j deletes every node and relationship, so the end-to-end run
// starts from an empty graph whatever ran before on the same server.
func MustWipeNeo4j(t testing.TB, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := neo4jdrv.NewDriverWithContext(uri, neo4jdrv.NoAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	// CALL { } IN TRANSACTIONS needs an auto-commit transaction: session.Run
	sess := d.NewSession(ctx, neo4jdrv.SessionConfig{})
	defer sess.Close(ctx)
	res, err := sess.Run(ctx, "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS", nil)
	if err == nil {
		_, err = res.Consume(ctx)
	}
	if err != nil {
		t.Fatalf("wipe neo4j: %v", err)
	}
}
