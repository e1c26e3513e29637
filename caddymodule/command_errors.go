package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// commandGroup is a command that only holds subcommands: run with no
// subcommand or an unknown one, it fails and lists the valid ones, where
// cobra alone would print the help and exit 0.
func commandGroup(c *cobra.Command) *cobra.Command {
	c.SilenceUsage = true
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		valid := strings.Join(names, ", ")
		if len(args) == 0 {
			return fmt.Errorf("%s needs a subcommand: %s", cmd.CommandPath(), valid)
		}
		msg := fmt.Sprintf("unknown subcommand %q of %s; valid ones: %s", args[0], cmd.CommandPath(), valid)
		if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(suggestions, " or "))
		}
		return errors.New(msg)
	}
	return c
}

// apiError is the one sentence an error answer of the admin API becomes:
// its code and message, never the raw JSON.
func apiError(status int, body []byte) error {
	var answer struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Error != "" {
		if answer.Code == "" {
			return errors.New(answer.Error)
		}
		return fmt.Errorf("%s: %s", answer.Code, answer.Error)
	}
	text := strings.TrimSpace(string(body))
	if text == "" || len(text) > 200 {
		text = http.StatusText(status)
	}
	return fmt.Errorf("the admin API answered HTTP %d: %s", status, text)
}

// unreachable explains a failed connection to the admin endpoint: which
// address was tried, and how to name another.
func unreachable(adminAddr string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nothing answers at the admin address %s (is Caddy running? --address names another)", adminAddr)
	}
	return fmt.Errorf("cannot reach the admin address %s: %v (--address names another)", adminAddr, err)
}
