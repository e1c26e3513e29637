package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/accessauth/caddy-access-auth/admin"
)

// maxRawRequest bounds a raw request explain reads: the admin API takes
// at most 1 MiB of JSON, the body base64 in it.
const maxRawRequest = 1 << 20

// parseRawRequest reads a raw HTTP/1.x request, as captured on the wire or
// written by hand (CRLF or LF line ends), with Go's own server parser, so
// that explain sees it as Caddy would: the request target exactly as sent,
// the Host header, the body as its Content-Length or chunked framing says.
func parseRawRequest(raw []byte) (admin.ExplainInput, error) {
	if len(raw) > maxRawRequest {
		return admin.ExplainInput{}, fmt.Errorf("the raw request is larger than %d bytes", maxRawRequest)
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return admin.ExplainInput{}, errors.New("the raw request ends before its headers do (a blank line ends them)")
		}
		return admin.ExplainInput{}, fmt.Errorf("not an HTTP/1.1 request: %v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return admin.ExplainInput{}, fmt.Errorf("the raw request's body: %v", err)
	}
	headers := map[string][]string(req.Header.Clone())
	if req.Host != "" {
		headers["Host"] = []string{req.Host}
	}
	return admin.ExplainInput{Method: req.Method, URL: req.RequestURI, Headers: headers, BodyBase64: base64.StdEncoding.EncodeToString(body)}, nil
}
