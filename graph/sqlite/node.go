package sqlite

import (
	"database/sql"
	"fmt"

	"github.com/cityhub/cityhub/graph"
)

// nodeCols are the columns scanNode reads, for the nodes table aliased n.
const nodeCols = `n.id, n.class, n.props, n.doc`

// nodeScan holds the scan targets of one node row.
type nodeScan struct {
	id                sql.NullString // NULL: no node (outer joins)
	class, props, doc sql.NullString
}

func (ns *nodeScan) targets() []any {
	return []any{&ns.id, &ns.class, &ns.props, &ns.doc}
}

// node builds the graph.Node of a scanned row.
func (s *Store) node(ns *nodeScan) (*graph.Node, error) {
	n := &graph.Node{ID: ns.id.String, Class: ns.class.String}
	props, err := decodeProps(s.classProps[ns.class.String], ns.props.String)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", ns.id.String, err)
	}
	n.Props = props
	if n.Geometry, n.Prov, err = decodeDoc(ns.doc.String); err != nil {
		return nil, fmt.Errorf("node %q: %w", ns.id.String, err)
	}
	return n, nil
}

// scanNodes reads rows whose first columns are nodeCols, passing the
// remaining columns to extra (which may be nil). A row without a node (a
// NULL id from an outer join) calls each with nil.
func (s *Store) scanNodes(rows *sql.Rows, extra func() []any, each func(*graph.Node) error) error {
	defer rows.Close()
	var ns nodeScan
	targets := ns.targets()
	base := len(targets)
	for rows.Next() {
		targets = targets[:base]
		if extra != nil {
			targets = append(targets, extra()...)
		}
		if err := rows.Scan(targets...); err != nil {
			return err
		}
		if !ns.id.Valid {
			if err := each(nil); err != nil {
				return err
			}
			continue
		}
		n, err := s.node(&ns)
		if err != nil {
			return err
		}
		if err := each(n); err != nil {
			return err
		}
	}
	return rows.Err()
}
