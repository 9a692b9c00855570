package resolvers

//go:generate go run ./gen -root .. -ontology ontology/city.yaml -config gqlgen.yml
