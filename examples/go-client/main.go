// Command go-client sends one request signed with the signature package of
// caddy-access-auth, the way a Go API caller does.
//
//	API_KEY=… API_SECRET=… go run ./examples/go-client [-scheme sigv4] [-d '{"a":1}'] http://localhost:8080/api/hello
//
// It prints the answer's status line and body.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/accessauth/caddy-access-auth/signature"
)

func main() {
	schemeName := flag.String("scheme", signature.DefaultScheme.String(), signature.ExpectedSchemes())
	data := flag.String("d", "", "JSON body to POST (none: GET)")
	flag.Parse()
	if flag.NArg() != 1 || os.Getenv("API_KEY") == "" || os.Getenv("API_SECRET") == "" {
		fmt.Fprintln(os.Stderr, "usage: API_KEY=… API_SECRET=… go-client [-scheme s] [-d body] URL")
		os.Exit(2)
	}
	if err := run(*schemeName, *data, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(schemeName, data, url string) error {
	scheme, err := signature.ParseScheme(schemeName)
	if err != nil {
		return err
	}
	method, body := http.MethodGet, io.Reader(nil)
	if data != "" {
		method, body = http.MethodPost, strings.NewReader(data)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	if data != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// Sign sets the date, nonce and Authorization (or X-Ca-*) headers. For
	// large uploads, signature.WithContentSHA256() lets the gateway stream
	// the body instead of buffering it.
	if err := signature.Sign(req, scheme, os.Getenv("API_KEY"), os.Getenv("API_SECRET")); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Println(resp.Proto, resp.Status)
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
