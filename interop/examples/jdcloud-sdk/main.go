// Command jdcloud-sdk sends one request signed by JD Cloud's own Go SDK
// signer (github.com/jdcloud-api/jdcloud-sdk-go/core): callers that already
// use JD Cloud's SDKs keep their code. It lives in the interop module so
// that the plugin's module does not depend on the SDK.
//
//	cd interop && API_KEY=… API_SECRET=… go run ./examples/jdcloud-sdk http://localhost:8080/api/hello
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/jdcloud-api/jdcloud-sdk-go/core"
)

func main() {
	if len(os.Args) != 2 || os.Getenv("API_KEY") == "" || os.Getenv("API_SECRET") == "" {
		fmt.Fprintln(os.Stderr, "usage: API_KEY=… API_SECRET=… jdcloud-sdk URL")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(url string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	signer := core.NewSigner(*core.NewCredentials(os.Getenv("API_KEY"), os.Getenv("API_SECRET")), core.NewDummyLogger())
	// Service and region name the credential scope (JDCLOUD2); a route
	// with `service`/`region` set accepts only its own.
	if _, err := signer.Sign(req, nil, "apigateway", "cn-north-1", time.Now()); err != nil {
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
