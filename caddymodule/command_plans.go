package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// plansCommand manages usage plans. Rates and quotas are written as
// <requests>/<per>, e.g. --rate 100/1m --quota 10000/month; "none" removes
// one on update.
func plansCommand() *cobra.Command {
	plans := commandGroup(&cobra.Command{Use: "plans", Short: "Usage plans (rate limits and quotas)"})

	create := subcommand("create <name>", "Creates a usage plan", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		body, err := planBody(cmd)
		if err != nil {
			return err
		}
		body["name"] = args[0]
		return adminCall(cmd, http.MethodPost, "/access-auth/plans", body)
	})
	update := subcommand("update <name>", "Changes a usage plan", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		body, err := planBody(cmd)
		if err != nil {
			return err
		}
		return adminCall(cmd, http.MethodPatch, "/access-auth/plans/"+url.PathEscape(args[0]), body)
	})
	for _, c := range []*cobra.Command{create, update} {
		c.Flags().String("description", "", "description")
		c.Flags().String("rate", "", "requests per 1s, 1m or 1h, e.g. 100/1m (none: no rate)")
		c.Flags().Int64("burst", 0, "extra requests allowed at once above the rate")
		c.Flags().String("quota", "", "requests per calendar day, week or month (UTC), e.g. 10000/month (none: no quota)")
	}
	list := listFlags(subcommand("list", "Lists usage plans", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		return adminCall(cmd, http.MethodGet, "/access-auth/plans"+query(cmd, "limit", "cursor"), nil)
	}))
	plans.AddCommand(create, list, update,
		byID("show", "Shows a usage plan", http.MethodGet, "/access-auth/plans/"),
		byID("delete", "Deletes a usage plan no authorization or binding names", http.MethodDelete, "/access-auth/plans/"))
	return plans
}

// planBody turns the flags the user set into a plan's JSON fields.
func planBody(cmd *cobra.Command) (map[string]any, error) {
	body := changed(cmd, "description")
	if f := cmd.Flags().Lookup("burst"); f.Changed {
		body["burst"], _ = cmd.Flags().GetInt64("burst")
	}
	for _, limit := range []struct{ flag, unit string }{{"rate", "per"}, {"quota", "period"}} {
		f := cmd.Flags().Lookup(limit.flag)
		if !f.Changed {
			continue
		}
		value, err := parsePlanLimit(limit.flag, limit.unit, f.Value.String())
		if err != nil {
			return nil, err
		}
		body[limit.flag] = value
	}
	return body, nil
}

// parsePlanLimit reads <requests>/<unit> as {"requests": n, unit: "…"}, or
// "none" as null. The admin API checks the unit and the number's range.
func parsePlanLimit(flag, unit, value string) (any, error) {
	if value == "none" {
		return nil, nil
	}
	n, per, ok := strings.Cut(value, "/")
	requests, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil {
		return nil, fmt.Errorf("--%s %q is not <requests>/<%s>, e.g. --rate 100/1m or --quota 10000/month", flag, value, unit)
	}
	return map[string]any{"requests": requests, unit: per}, nil
}
