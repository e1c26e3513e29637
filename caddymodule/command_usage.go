package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// keyUsageCommand prints a key's quota budgets and daily requests as
// tables (docs/admin-api.md, "Usage per key"); --json prints the answer.
func keyUsageCommand() *cobra.Command {
	c := subcommand("usage <id>", "Shows a key's quota budgets now and its daily requests of the last 90 days", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string) error {
			id, err := keyID(cmd, args[0])
			if err != nil {
				return err
			}
			path := keysPath + url.PathEscape(id) + "/usage"
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return adminCall(cmd, http.MethodGet, path, nil)
			}
			raw, err := adminAnswer(cmd, http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			var u keyUsageAnswer
			if err := json.Unmarshal(raw, &u); err != nil {
				return fmt.Errorf("reading the usage of %s: %v", id, err)
			}
			return u.print(cmd.OutOrStdout())
		})
	c.Flags().Bool("json", false, "print the admin API's JSON answer")
	return c
}

// keyUsageAnswer is what the CLI reads of the usage answer.
type keyUsageAnswer struct {
	Budgets []struct {
		Scope string  `json:"scope"`
		Group *string `json:"group"`
		Plan  string  `json:"plan"`
		Quota struct {
			Requests int64  `json:"requests"`
			Period   string `json:"period"`
		} `json:"quota"`
		Used      int64     `json:"used"`
		Remaining int64     `json:"remaining"`
		ResetsAt  time.Time `json:"resets_at"`
	} `json:"budgets"`
	Daily []struct {
		Date    string `json:"date"`
		Group   string `json:"group"`
		Allowed int64  `json:"allowed"`
		Limited int64  `json:"limited"`
	} `json:"daily"`
}

// print writes the budgets and the daily counts as two aligned tables.
func (u keyUsageAnswer) print(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(u.Budgets) == 0 {
		fmt.Fprintln(w, "Quota budgets: none (no plan with a quota applies to this key)")
	} else {
		fmt.Fprintln(w, "Quota budgets")
		fmt.Fprintln(w, "SCOPE\tGROUP\tPLAN\tQUOTA\tUSED\tREMAINING\tRESETS AT (UTC)")
		for _, b := range u.Budgets {
			group := "(all)"
			if b.Group != nil {
				group = *b.Group
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%s\t%d\t%d\t%s\n", b.Scope, group, b.Plan, b.Quota.Requests, b.Quota.Period,
				b.Used, b.Remaining, b.ResetsAt.UTC().Format(time.DateTime))
		}
	}
	fmt.Fprintln(w)
	if len(u.Daily) == 0 {
		fmt.Fprintln(w, "Daily requests: none in the last 90 days")
		return w.Flush()
	}
	fmt.Fprintln(w, "Daily requests (UTC days, newest first)")
	fmt.Fprintln(w, "DATE\tGROUP\tALLOWED\tLIMITED")
	var allowed, limited int64
	for _, d := range u.Daily {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", d.Date, d.Group, d.Allowed, d.Limited)
		allowed += d.Allowed
		limited += d.Limited
	}
	fmt.Fprintln(w, "total\t\t"+strconv.FormatInt(allowed, 10)+"\t"+strconv.FormatInt(limited, 10))
	return w.Flush()
}
