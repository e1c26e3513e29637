package admin

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"

	"golang.org/x/net/http/httpguts"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/store"
)

// Explainer runs the gateway's request check on a captured request and
// says what each step computed (docs/explain.md). caddymodule wires the
// running gateway's, so that the check explained is the one that serves.
type Explainer interface {
	Explain(ctx context.Context, in enforcement.ExplainRequest) (enforcement.Explanation, error)
}

// ExplainInput is the body of POST /access-auth/explain (docs/explain.md).
type ExplainInput struct {
	Method      string              `json:"method"`
	URL         string              `json:"url"`
	Headers     map[string][]string `json:"headers,omitempty"`
	BodyBase64  string              `json:"body_base64,omitempty"`
	Group       string              `json:"group,omitempty"`
	Environment string              `json:"environment,omitempty"`
	ClientIP    string              `json:"client_ip,omitempty"`
}

// ExplainAnswer is the answer of POST /access-auth/explain. canonical_request
// and string_to_sign are the documented form's; forms_tried lists every
// form the signature check hashed.
type ExplainAnswer struct {
	Decision         string        `json:"decision"`
	Scheme           string        `json:"scheme"`
	APIKey           string        `json:"api_key"`
	AccessKeyID      string        `json:"access_key_id"`
	Steps            []ExplainStep `json:"steps"`
	CanonicalRequest string        `json:"canonical_request"`
	StringToSign     string        `json:"string_to_sign"`
	FormsTried       []ExplainForm `json:"forms_tried"`
}

// ExplainStep is one step of the check: whether it passed, what it computed.
type ExplainStep struct {
	Step   string `json:"step"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// ExplainForm is a canonical request and the string to sign made from it.
type ExplainForm struct {
	Form             string `json:"form"`
	CanonicalRequest string `json:"canonical_request"`
	StringToSign     string `json:"string_to_sign"`
}

func (h *handler) explain(r *http.Request) (int, any, error) {
	var in ExplainInput
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	req, err := in.request()
	if err != nil {
		return 0, nil, err
	}
	if h.opts.Explainer == nil {
		return 0, nil, &apiError{http.StatusServiceUnavailable, "store_unavailable", "no gateway runs whose check could explain the request"}
	}
	e, err := h.opts.Explainer.Explain(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	return ok(answerOf(e), nil)
}

// request checks the input, naming the first bad field, and makes the
// request to explain: the headers as a server reads them (canonical
// names, Host taken out), the host from the Host header or the URL.
func (in *ExplainInput) request() (enforcement.ExplainRequest, error) {
	var out enforcement.ExplainRequest
	if in.Method == "" || !httpguts.ValidHeaderFieldName(in.Method) {
		return out, invalid("method: required, an HTTP method such as GET")
	}
	if in.URL == "" {
		return out, invalid("url: required, the URL as the client sent it")
	}
	u, err := url.Parse(in.URL)
	if err != nil {
		return out, invalid("url: %v", err)
	}
	if u.Opaque != "" || (u.Host == "" && u.Path != "" && u.Path[0] != '/') {
		return out, invalid("url: %q is neither an absolute URL nor a path starting with /", in.URL)
	}
	header := make(http.Header, len(in.Headers))
	for name, values := range in.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return out, invalid("headers: %q is not a header name", name)
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return out, invalid("headers: the value of %s holds a character a header may not", name)
			}
		}
		key := http.CanonicalHeaderKey(name)
		header[key] = append(header[key], values...)
	}
	host := u.Host
	if hosts := header["Host"]; len(hosts) > 0 {
		host = hosts[0]
		delete(header, "Host") // a server reads it into Request.Host
	}
	body, err := base64.StdEncoding.DecodeString(in.BodyBase64)
	if err != nil {
		return out, invalid("body_base64: not standard base64: %v", err)
	}
	switch {
	case in.Group != "" && !store.ValidGroupName(in.Group):
		return out, invalid("group: invalid name %q", in.Group)
	case in.Environment != "" && !store.ValidEnvironment(in.Environment):
		return out, invalid("environment: invalid name %q", in.Environment)
	}
	if in.ClientIP != "" {
		ip, err := netip.ParseAddr(in.ClientIP)
		if err != nil {
			return out, invalid("client_ip: %q is not an IP address", in.ClientIP)
		}
		out.ClientIP = ip.Unmap()
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	out.Request.Method, out.Request.Host, out.Request.Path, out.Request.RawQuery = in.Method, host, path, u.RawQuery
	out.Request.Header, out.Body = header, body
	out.Group, out.Environment = in.Group, in.Environment
	return out, nil
}

// answerOf is the JSON answer of an explanation. It never holds a secret
// nor the expected signature: the explanation has neither.
func answerOf(e enforcement.Explanation) ExplainAnswer {
	a := ExplainAnswer{
		Decision:    e.Decision.String(),
		APIKey:      e.APIKey,
		AccessKeyID: e.AccessKeyID,
		Steps:       make([]ExplainStep, len(e.Steps)),
		FormsTried:  make([]ExplainForm, len(e.Forms)),
	}
	if e.Scheme != 0 {
		a.Scheme = e.Scheme.String()
	}
	for i, s := range e.Steps {
		a.Steps[i] = ExplainStep{Step: s.Name, OK: s.OK, Detail: s.Detail}
	}
	for i, f := range e.Forms {
		a.FormsTried[i] = ExplainForm{Form: f.Name, CanonicalRequest: f.CanonicalRequest, StringToSign: f.StringToSign}
	}
	if len(e.Forms) > 0 {
		a.CanonicalRequest, a.StringToSign = e.Forms[0].CanonicalRequest, e.Forms[0].StringToSign
	}
	return a
}
