package neo4j

import (
	"strconv"
	"strings"
)

// cypher accumulates query text and its parameters. Values only ever
// enter a query through p; the text holds nothing but fixed keywords,
// variables, parameter names and names checked against the ontology.
type cypher struct {
	sb     strings.Builder
	params map[string]any
}

func newCypher() *cypher { return &cypher{params: map[string]any{}} }

// w writes query text.
func (c *cypher) w(parts ...string) *cypher {
	for _, s := range parts {
		c.sb.WriteString(s)
	}
	return c
}

// p writes a fresh parameter bound to v.
func (c *cypher) p(v any) *cypher {
	c.sb.WriteString(c.param(v))
	return c
}

// param binds v to a fresh parameter and returns its reference ($pN).
func (c *cypher) param(v any) string {
	name := "p" + strconv.Itoa(len(c.params))
	c.params[name] = v
	return "$" + name
}

// named binds v to a parameter of a fixed name and returns its reference.
func (c *cypher) named(name string, v any) string {
	c.params[name] = v
	return "$" + name
}

func (c *cypher) String() string { return c.sb.String() }

// sub returns a builder for a fragment whose parameters join c's, so the
// fragment's text can be written into c once or several times.
func (c *cypher) sub() *cypher { return &cypher{params: c.params} }

// prop is the Cypher expression of property key of variable v. Keys are
// ontology names (checked by newModel) or the store's own constants.
func prop(v, key string) string { return v + "." + key }
