// Package demo holds what the demo city shows a newcomer: the cross-domain
// query GraphiQL opens with. The data and connector files live in
// demo/cambridge.
package demo

import _ "embed"

// CrossDomainQuery is the query GraphiQL opens with: the crashes in one
// Cambridge neighbourhood with the nearest traffic signal and street light,
// the parking and bike-share stations nearby and the latest traffic count
// close by.
//
//go:embed cambridge/cross-domain.graphql
var CrossDomainQuery string
