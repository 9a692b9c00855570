package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/cityhub/cityhub/web"
)

func ExampleHandler() {
	cfg := web.DefaultConfig()
	cfg.DefaultQuery = "{ __typename }"
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler(cfg))
	// The GraphQL server goes next to it: mux.Handle("/graphql", srv).

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
