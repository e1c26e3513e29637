package admin

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPIDocument describes every route of this package's router; it is
// written by hand, like docs/admin-api.md, because the handlers decode into
// store types whose JSON a generator cannot see whole (Optional, PlanRef,
// tidy's [] for null). TestOpenAPICoversRoutes keeps it and the router in step.
//
//go:embed openapi.json
var openAPIDocument []byte

func (h *handler) openAPI(*http.Request) (int, any, error) {
	return ok(json.RawMessage(openAPIDocument), nil)
}
