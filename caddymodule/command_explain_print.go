package caddymodule

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/accessauth/caddy-access-auth/admin"
)

// printExplanation prints an explanation for a person: the decision, each
// step, and when the signature does not match, the gateway's canonical
// forms, side by side with the client's when it is given.
func printExplanation(w io.Writer, a *admin.ExplainAnswer, noGroup bool, client *admin.ExplainForm) {
	fmt.Fprintf(w, "decision: %s\n", a.Decision)
	if a.Scheme != "" {
		fmt.Fprintf(w, "scheme %s, API key %s", a.Scheme, a.APIKey)
		if a.AccessKeyID != "" {
			fmt.Fprintf(w, ", access key %s", a.AccessKeyID)
		}
		fmt.Fprintln(w)
	}
	width := 0
	for _, s := range a.Steps {
		width = max(width, len(s.Step))
	}
	signatureFailed := false
	for _, s := range a.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
			signatureFailed = signatureFailed || s.Step == "signature"
		}
		fmt.Fprintf(w, "  %s  %-*s  %s\n", mark, width, s.Step, s.Detail)
	}
	if noGroup && a.Decision == "allowed" {
		fmt.Fprintln(w, "  (authorization, binding, client IP and usage plan not checked: name the API group with --group)")
	}
	switch {
	case len(a.FormsTried) == 0:
	case client != nil:
		printAgainstClient(w, a.FormsTried, client)
	case signatureFailed:
		for _, f := range a.FormsTried {
			fmt.Fprintf(w, "\ncanonical request the gateway computed (%s form):\n%s\n", f.Form, f.CanonicalRequest)
			if f.StringToSign != f.CanonicalRequest {
				fmt.Fprintf(w, "string to sign (%s form):\n%s\n", f.Form, f.StringToSign)
			}
		}
		fmt.Fprintln(w, "\nCompare them with what your client signed: --canonical FILE shows them side by side "+
			"(caddy access-auth curl --verbose prints what it signed).")
	}
}

// printAgainstClient puts the client's canonical request beside the
// gateway's form closest to it, and names the lines that differ.
func printAgainstClient(w io.Writer, forms []admin.ExplainForm, client *admin.ExplainForm) {
	best, bestDiff := forms[0], -1
	for _, f := range forms {
		if d := len(differingLines(f.CanonicalRequest, client.CanonicalRequest)); bestDiff < 0 || d < bestDiff {
			best, bestDiff = f, d
		}
	}
	fmt.Fprintln(w)
	sideBySide(w, "canonical request", "gateway ("+best.Form+" form)", best.CanonicalRequest, "yours", client.CanonicalRequest)
	if client.StringToSign != "" && client.StringToSign != client.CanonicalRequest {
		fmt.Fprintln(w)
		sideBySide(w, "string to sign", "gateway ("+best.Form+" form)", best.StringToSign, "yours", client.StringToSign)
	}
}

// sideBySide prints two texts line by line in two columns, a "!" before
// each line that differs, then each differing line in full.
func sideBySide(w io.Writer, what, leftTitle, left, rightTitle, right string) {
	l, r := strings.Split(left, "\n"), strings.Split(right, "\n")
	width := len(leftTitle)
	for _, line := range l {
		width = max(width, len(line))
	}
	differ := differingLines(left, right)
	fmt.Fprintf(w, "%s, side by side:\n       %-*s | %s\n", what, width, leftTitle, rightTitle)
	for i := range max(len(l), len(r)) {
		mark := " "
		if slices.Contains(differ, i) {
			mark = "!"
		}
		fmt.Fprintf(w, "%s %3d  %-*s | %s\n", mark, i+1, width, lineAt(l, i), lineAt(r, i))
	}
	if len(differ) == 0 {
		fmt.Fprintf(w, "the %ss are the same: the client signed with another secret\n", what)
		return
	}
	for _, i := range differ {
		fmt.Fprintf(w, "line %d of the %s differs:\n  gateway: %q\n  yours:   %q\n", i+1, what, lineAt(l, i), lineAt(r, i))
	}
}

// differingLines are the indexes of the lines in which a and b differ.
func differingLines(a, b string) []int {
	l, r := strings.Split(a, "\n"), strings.Split(b, "\n")
	var differ []int
	for i := range max(len(l), len(r)) {
		if i >= len(l) || i >= len(r) || l[i] != r[i] {
			differ = append(differ, i)
		}
	}
	return differ
}

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}
