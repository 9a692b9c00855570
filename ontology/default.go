package ontology

import (
	_ "embed"
	"sync"
)

// DefaultFile is the path, relative to the module root, of the built-in
// city ontology. It is the file to edit (then run go generate ./...) and
// the name positions in its errors refer to.
const DefaultFile = "ontology/city.yaml"

//go:embed city.yaml
var defaultYAML string

// defaultOntology parses the embedded file once. The result is immutable,
// so sharing it is safe.
var defaultOntology = sync.OnceValue(func() *Ontology {
	return MustParse(DefaultFile, []byte(defaultYAML))
})

// Default returns the built-in city ontology (ONTOLOGY.md §2), compiled
// into the binary from DefaultFile. It is parsed on first use and shared:
// callers must not modify it. Default panics if the embedded file is
// invalid, which is a programmer error caught by this package's tests.
func Default() *Ontology { return defaultOntology() }
