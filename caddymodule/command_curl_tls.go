package caddymodule

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/pflag"
)

// curlClient is the HTTP client of curl: it verifies the server with the
// system's CAs, the ones of --cacert instead, or not at all with -k.
func curlClient(flags *pflag.FlagSet) (*http.Client, error) {
	insecure, _ := flags.GetBool("insecure")
	caFile, _ := flags.GetString("cacert")
	if !insecure && caFile == "" {
		return http.DefaultClient, nil
	}
	config := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // asked for with -k, as with curl
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: %s holds no PEM certificate", caFile)
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = config
	return &http.Client{Transport: transport}, nil
}
