package admin

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes fails when a route of the router is missing from
// openapi.json, or the document lists a route the router lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	var routed []string
	for pattern := range newHandler(nil, Options{}).patterns {
		routed = append(routed, pattern)
	}
	for _, route := range routed {
		if !slices.Contains(documented, route) {
			t.Errorf("route %s is missing from openapi.json", route)
		}
	}
	for _, route := range documented {
		if !slices.Contains(routed, route) {
			t.Errorf("openapi.json lists %s, which the router lacks", route)
		}
	}
}
