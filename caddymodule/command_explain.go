package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/accessauth/caddy-access-auth/admin"
)

func explainCommand() *cobra.Command {
	c := subcommand("explain [-X method] [-H 'name: value'] [-d body] <url> | --raw <file|->",
		"Shows what the gateway computes for a request, step by step (docs/explain.md)", cobra.MaximumNArgs(1), runExplain)
	requestFlags(c.Flags())
	c.Flags().String("raw", "", "file holding a raw HTTP/1.1 request (- reads stdin), instead of -X, -H, -d and the URL")
	c.Flags().String("group", "", "API group to check the authorization against (without it those steps are skipped)")
	c.Flags().String("environment", "", "environment of the group (default the route's)")
	c.Flags().String("client-ip", "", "the caller's IP address, for the authorization's allowed_ips")
	c.Flags().String("canonical", "", "file (- reads stdin) with the canonical request the client signed, "+
		"or the output of caddy access-auth curl --verbose: shown side by side with the gateway's")
	c.Flags().Bool("json", false, "print the API's JSON answer instead")
	return c
}

func runExplain(cmd *cobra.Command, args []string) error {
	flags := cmd.Flags()
	in, err := explainRequest(cmd, args)
	if err != nil {
		return err
	}
	in.Group, _ = flags.GetString("group")
	in.Environment, _ = flags.GetString("environment")
	in.ClientIP, _ = flags.GetString("client-ip")
	var client *admin.ExplainForm
	if name, _ := flags.GetString("canonical"); name != "" {
		data, err := readFileOrStdin(cmd, name)
		if err != nil {
			return fmt.Errorf("--canonical: %w", err)
		}
		client = parseSignedForm(string(data))
	}
	raw, err := adminAnswer(cmd, http.MethodPost, "/access-auth/explain", in)
	if err != nil {
		return err
	}
	var answer admin.ExplainAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return fmt.Errorf("the admin API's answer is not an explanation: %v", err)
	}
	out := cmd.OutOrStdout()
	if asJSON, _ := flags.GetBool("json"); asJSON {
		_, err = out.Write(raw)
	} else {
		printExplanation(out, &answer, in.Group == "", client)
	}
	if err != nil {
		return err
	}
	if answer.Decision != "allowed" {
		// Non-zero like curl's refused answer, so a script can tell.
		return fmt.Errorf("the gateway would refuse this request: %s", answer.Decision)
	}
	return nil
}

// explainRequest is the request to explain: --raw's, or the one the
// curl-like flags and the URL make.
func explainRequest(cmd *cobra.Command, args []string) (admin.ExplainInput, error) {
	flags := cmd.Flags()
	rawFile, _ := flags.GetString("raw")
	switch {
	case rawFile != "" && (len(args) > 0 || anyChanged(flags, "request", "header", "data")):
		return admin.ExplainInput{}, errors.New("--raw gives the whole request: leave out the URL, -X, -H and -d")
	case rawFile != "":
		raw, err := readFileOrStdin(cmd, rawFile)
		if err != nil {
			return admin.ExplainInput{}, fmt.Errorf("--raw: %w", err)
		}
		in, err := parseRawRequest(raw)
		if err != nil {
			return admin.ExplainInput{}, fmt.Errorf("--raw %s: %w", rawFile, err)
		}
		return in, nil
	case len(args) == 0:
		return admin.ExplainInput{}, errors.New("give the request's URL (with -X, -H, -d as for curl) or --raw FILE")
	}
	method, header, body, err := readRequestFlags(flags)
	if err != nil {
		return admin.ExplainInput{}, err
	}
	return admin.ExplainInput{Method: method, URL: args[0], Headers: header, BodyBase64: base64.StdEncoding.EncodeToString(body)}, nil
}

func anyChanged(flags *pflag.FlagSet, names ...string) bool {
	for _, name := range names {
		if flags.Changed(name) {
			return true
		}
	}
	return false
}

func readFileOrStdin(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxRawRequest+1))
	}
	return os.ReadFile(name)
}

// parseSignedForm reads what the client signed: the output of
// caddy access-auth curl --verbose (its canonical request and string to
// sign), else the whole text as the canonical request.
func parseSignedForm(text string) *admin.ExplainForm {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	start := strings.Index(text, canonicalMarker)
	if start < 0 {
		return &admin.ExplainForm{Form: "yours", CanonicalRequest: strings.TrimSuffix(text, "\n")}
	}
	rest := text[start:]
	_, rest, _ = strings.Cut(rest, "\n") // the marker's line
	canonical, sts, found := strings.Cut(rest, "\n"+stringToSignMarker+"\n")
	if !found {
		return &admin.ExplainForm{Form: "yours", CanonicalRequest: strings.TrimSuffix(canonical, "\n")}
	}
	return &admin.ExplainForm{Form: "yours", CanonicalRequest: canonical, StringToSign: withoutCLIError(sts)}
}

// withoutCLIError is curl --verbose's string to sign without the error
// line a refused request adds to the same stream.
func withoutCLIError(sts string) string {
	lines := strings.Split(strings.TrimSuffix(sts, "\n"), "\n")
	for len(lines) > 1 && strings.HasPrefix(lines[len(lines)-1], "Error: ") {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}
