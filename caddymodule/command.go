package caddymodule

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/accessauth/caddy-access-auth/signature"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "access-auth",
		Usage: "<keys|authorizations|groups|plans|export|import|apply|gen-master-key|curl|explain> [args]",
		Short: "Manages access keys, authorizations and API groups, and sends signed requests",
		Long: `
Talks to the access_auth admin API on Caddy's admin endpoint (--address, or the
admin address of --config, or localhost:2019).

  keys create|list|show|update|reset|delete|usage
  authorizations create|list|show|update|bind|unbind|delete
  groups create|list
  plans create|list|show|update|delete
  export > data.json, import data.json
  apply -f state.yaml [--dry-run] [--prune]
                            brings groups, plans, keys and authorizations to the
                            file's state (JSON or YAML) and prints the diff
  gen-master-key            prints a new base64 master key for master_key
  curl --key K --secret-file F [--scheme jdcloud2] [-X M] [-H h:v] [-d body] [--verbose] [-k] [--cacert F] URL
                            the secret: --secret-file, $ACCESS_AUTH_SECRET or --secret;
                            --verbose prints what it signed to stderr
  explain [-X M] [-H h:v] [-d body] URL | --raw FILE|-  [--group G] [--canonical FILE]
                            what the gateway computes for a request, step by step;
                            --canonical puts the client's canonical request beside it
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("address", "", "admin endpoint address (default: from --config, else localhost:2019)")
			cmd.PersistentFlags().StringP("config", "c", "", "configuration file to read the admin address from")
			cmd.PersistentFlags().StringP("adapter", "a", "", "name of the config adapter for --config")
			cmd.AddCommand(keysCommand(), authorizationsCommand(), groupsCommand(), plansCommand(),
				exportCommand(), importCommand(), applyCommand(), genMasterKeyCommand(), curlCommand(), explainCommand())
			commandGroup(cmd)
		},
	})
}

// adminCall sends one request to the admin API and prints the JSON answer.
func adminCall(cmd *cobra.Command, method, path string, body any) error {
	raw, err := adminAnswer(cmd, method, path, body)
	if err != nil || len(raw) == 0 {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		_, err = cmd.OutOrStdout().Write(raw)
		return err
	}
	pretty.WriteByte('\n')
	_, err = pretty.WriteTo(cmd.OutOrStdout())
	return err
}

// adminAnswer sends one request to the admin API and returns the body of
// a successful answer; an error answer becomes the error.
func adminAnswer(cmd *cobra.Command, method, path string, body any) ([]byte, error) {
	var buf bytes.Buffer
	if err := adminStream(cmd, method, path, body, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// adminStream sends one request to the admin API and copies the body of a
// successful answer to out as it arrives; an error answer becomes the
// error. body is nil, raw bytes, a reader (sent as it is read: an import of
// any size) or a value sent as JSON.
func adminStream(cmd *cobra.Command, method, path string, body any, out io.Writer) error {
	flags := cmd.Flags()
	address, _ := flags.GetString("address")
	configFile, _ := flags.GetString("config")
	adapter, _ := flags.GetString("adapter")
	adminAddr, err := caddycmd.DetermineAdminAPIAddress(address, nil, configFile, adapter)
	if err != nil {
		return err
	}
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		reader = bytes.NewReader(b)
	case io.Reader:
		reader = b
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(encoded)
	}
	resp, err := adminRequest(adminAddr, method, path, reader)
	if err != nil {
		return unreachable(adminAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		return apiError(resp.StatusCode, raw)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// adminRequest sends one request to the admin endpoint at adminAddr (TCP,
// unix socket or fd, as Caddy's own CLI does) and leaves an error answer to
// the caller, which words it from the API's code and message.
func adminRequest(adminAddr, method, path string, body io.Reader) (*http.Response, error) {
	addr, err := caddy.ParseNetworkAddress(adminAddr)
	if err != nil || addr.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: %v", adminAddr, err)
	}
	origin := "http://" + addr.JoinHostPort(0)
	if addr.IsUnixNetwork() || addr.IsFdNetwork() {
		origin = "http://127.0.0.1" // any host: the dialer ignores it
	}
	req, err := http.NewRequest(method, origin+path, body)
	if err != nil {
		return nil, err
	}
	if !addr.IsUnixNetwork() && !addr.IsFdNetwork() {
		req.Header.Set("Origin", origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, addr.Network, addr.JoinHostPort(0))
		},
	}}
	return client.Do(req)
}

// changed returns the flags the user set, as JSON fields (dashes become underscores).
func changed(cmd *cobra.Command, names ...string) map[string]any {
	fields := map[string]any{}
	for _, name := range names {
		f := cmd.Flags().Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		key := strings.ReplaceAll(name, "-", "_")
		switch f.Value.Type() {
		case "bool":
			v, _ := cmd.Flags().GetBool(name)
			fields[key] = v
		case "stringSlice", "stringArray":
			v, _ := cmd.Flags().GetStringSlice(name)
			fields[key] = v
		default:
			if v := f.Value.String(); v == "never" || v == "" {
				fields[key] = nil
			} else {
				fields[key] = v
			}
		}
	}
	return fields
}

// query builds ?name=value from the flags the user set.
func query(cmd *cobra.Command, names ...string) string {
	q := url.Values{}
	for _, name := range names {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			q.Set(strings.ReplaceAll(name, "-", "_"), f.Value.String())
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func subcommand(use, short string, args cobra.PositionalArgs, run func(*cobra.Command, []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: run, SilenceUsage: true}
}

func listFlags(c *cobra.Command) *cobra.Command {
	c.Flags().Int("limit", 50, "items per page (at most 500)")
	c.Flags().String("cursor", "", "next_cursor of the previous page")
	return c
}

func keysCommand() *cobra.Command {
	keys := commandGroup(&cobra.Command{Use: "keys", Short: "Access keys"})

	create := subcommand("create --name <name>", "Creates an access key (or imports one with --api-key and --api-secret)", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string) error {
			body := changed(cmd, "name", "description", "api-key", "api-secret", "expires-at")
			if _, ok := body["api_key"]; ok {
				body["kind"] = "imported"
			}
			return adminCall(cmd, http.MethodPost, "/access-auth/keys", body)
		})
	create.Flags().String("name", "", "unique name of the key")
	create.Flags().String("description", "", "description")
	create.Flags().String("api-key", "", "import: the caller's existing AK")
	create.Flags().String("api-secret", "", "import: the caller's existing SK")
	timeFlag(create.Flags(), "expires-at", "time after which the key is refused", false)

	list := listFlags(subcommand("list", "Lists access keys", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		return adminCall(cmd, http.MethodGet, "/access-auth/keys"+query(cmd, "name", "enabled", "limit", "cursor"), nil)
	}))
	list.Flags().String("name", "", "only the key with this name")
	list.Flags().String("enabled", "", "true or false")

	update := subcommand("update <id>", "Changes an access key", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		id, err := keyID(cmd, args[0])
		if err != nil {
			return err
		}
		return adminCall(cmd, http.MethodPatch, keysPath+url.PathEscape(id),
			changed(cmd, "name", "description", "enabled", "expires-at"))
	})
	update.Flags().String("name", "", "new name")
	update.Flags().String("description", "", "new description")
	update.Flags().Bool("enabled", true, "enable or disable the key")
	timeFlag(update.Flags(), "expires-at", "time after which the key is refused, or never", true)

	reset := subcommand("reset <id>", "Issues a new secret", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		id, err := keyID(cmd, args[0])
		if err != nil {
			return err
		}
		return adminCall(cmd, http.MethodPost, keysPath+url.PathEscape(id)+"/reset", changed(cmd, "grace"))
	})
	reset.Flags().String("grace", "", "how long the old secret stays valid, e.g. 24h")

	keys.AddCommand(create, list, update, reset,
		byID("show", "Shows an access key", http.MethodGet, keysPath),
		byID("delete", "Deletes an access key", http.MethodDelete, keysPath),
		byID("groups", "Lists the groups a key may call", http.MethodGet, keysPath, "/groups"),
		keyUsageCommand())
	return keys
}

// byID is a subcommand that sends method to prefix+<id>+suffix; an access
// key may be given by its name.
func byID(name, short, method, prefix string, suffix ...string) *cobra.Command {
	return subcommand(name+" <id>", short, cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		id := args[0]
		if prefix == keysPath {
			var err error
			if id, err = keyID(cmd, id); err != nil {
				return err
			}
		}
		return adminCall(cmd, method, prefix+url.PathEscape(id)+strings.Join(suffix, ""), nil)
	})
}

func authorizationsCommand() *cobra.Command {
	auths := commandGroup(&cobra.Command{Use: "authorizations", Aliases: []string{"auth"}, Short: "Authorizations and their bindings"})

	create := subcommand("create (--access-key-id <id> | --api-key <key>)", "Authorizes an access key", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string) error {
			if err := resolveKeyFlag(cmd, "access-key-id"); err != nil {
				return err
			}
			body := changed(cmd, "access-key-id", "api-key", "description", "valid-from", "valid-until", "allowed-ips", "plan")
			bindings, _ := cmd.Flags().GetStringSlice("bind")
			if len(bindings) > 0 {
				list := make([]map[string]string, 0, len(bindings))
				for _, b := range bindings {
					group, rest, _ := strings.Cut(b, ":")
					env, plan, _ := strings.Cut(rest, ":")
					binding := map[string]string{"group": group, "environment": env}
					if plan != "" {
						binding["plan"] = plan
					}
					list = append(list, binding)
				}
				body["bindings"] = list
			}
			return adminCall(cmd, http.MethodPost, "/access-auth/authorizations", body)
		})
	create.Flags().String("access-key-id", "", "ID or name of the access key")
	create.Flags().String("api-key", "", "APIKey of the access key")
	create.Flags().String("description", "", "description")
	timeFlag(create.Flags(), "valid-from", "start of validity", false)
	timeFlag(create.Flags(), "valid-until", "end of validity", false)
	create.Flags().StringSlice("allowed-ips", nil, "CIDRs the calls may come from")
	create.Flags().StringSlice("bind", nil, "group[:environment[:plan]] to bind, repeatable")
	create.Flags().String("plan", "", "usage plan of the authorization")

	update := subcommand("update <id>", "Changes an authorization", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return adminCall(cmd, http.MethodPatch, "/access-auth/authorizations/"+url.PathEscape(args[0]),
			changed(cmd, "description", "enabled", "valid-from", "valid-until", "allowed-ips", "plan"))
	})
	update.Flags().String("description", "", "new description")
	update.Flags().Bool("enabled", true, "enable or disable the authorization")
	timeFlag(update.Flags(), "valid-from", `start of validity, or "" (none)`, true)
	timeFlag(update.Flags(), "valid-until", "end of validity, or never", true)
	update.Flags().StringSlice("allowed-ips", nil, "CIDRs the calls may come from")
	update.Flags().String("plan", "", `usage plan of the authorization ("" detaches it)`)

	bind := bindingCommand("bind", "Binds an authorization to a group", http.MethodPut,
		"environment of the group (default: every environment, *)")
	bind.Flags().String("plan", "", "the binding's own usage plan for this group (default: none)")

	list := listFlags(subcommand("list", "Lists authorizations", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		if err := resolveKeyFlag(cmd, "access-key-id"); err != nil {
			return err
		}
		return adminCall(cmd, http.MethodGet, "/access-auth/authorizations"+query(cmd, "access-key-id", "group", "limit", "cursor"), nil)
	}))
	list.Flags().String("access-key-id", "", "only the authorization of this key (ID or name)")
	list.Flags().String("group", "", "only authorizations bound to this group")

	auths.AddCommand(create, list, update, bind,
		byID("show", "Shows an authorization", http.MethodGet, "/access-auth/authorizations/"),
		byID("delete", "Deletes an authorization and its bindings", http.MethodDelete, "/access-auth/authorizations/"),
		bindingCommand("unbind", "Removes a binding", http.MethodDelete,
			"environment of the group (default: every binding to the group)"))
	return auths
}

func bindingCommand(name, short, method, environmentUsage string) *cobra.Command {
	c := subcommand(name+" <authorization-id> <group>", short, cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return adminCall(cmd, method, "/access-auth/authorizations/"+url.PathEscape(args[0])+"/bindings/"+
			url.PathEscape(args[1])+query(cmd, "environment", "plan"), nil)
	})
	c.Flags().String("environment", "", environmentUsage)
	return c
}

func groupsCommand() *cobra.Command {
	groups := commandGroup(&cobra.Command{Use: "groups", Short: "API groups"})
	create := subcommand("create <name>", "Creates an API group", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		body := changed(cmd, "description")
		body["name"] = args[0]
		return adminCall(cmd, http.MethodPost, "/access-auth/groups", body)
	})
	create.Flags().String("description", "", "description")
	list := listFlags(subcommand("list", "Lists API groups", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		return adminCall(cmd, http.MethodGet, "/access-auth/groups"+query(cmd, "limit", "cursor"), nil)
	}))
	groups.AddCommand(create, list)
	return groups
}

func exportCommand() *cobra.Command {
	return subcommand("export", "Writes the whole data set as JSON (secrets stay encrypted)", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string) error {
			// Streamed as the node writes it: a million keys never sit in memory.
			return adminStream(cmd, http.MethodGet, "/access-auth/export", nil, cmd.OutOrStdout())
		})
}

func importCommand() *cobra.Command {
	return subcommand("import <file|->", "Imports a data set written by export", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			return adminCall(cmd, http.MethodPost, "/access-auth/import", in)
		})
}

func genMasterKeyCommand() *cobra.Command {
	return subcommand("gen-master-key", "Prints a new random master key (base64, 32 bytes) for master_key", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(key))
			return err
		})
}

func curlCommand() *cobra.Command {
	c := subcommand("curl --key <APIKey> --secret-file <file> [-X method] [-H 'name: value'] [-d body] [--verbose] <url>",
		"Sends a signed request and prints the answer", cobra.ExactArgs(1), runCurl)
	c.Flags().String("key", "", "APIKey")
	c.Flags().String("secret", "", "APISecret (other users may see it in the process list: prefer --secret-file or $"+secretEnv+")")
	c.Flags().String("secret-file", "", "file that holds the APISecret (a trailing newline is ignored)")
	c.Flags().String("scheme", signature.DefaultScheme.String(), "signature scheme: "+signature.ExpectedSchemes())
	c.Flags().String("region", "", "region of the credential scope")
	c.Flags().String("service", "", "service of the credential scope")
	requestFlags(c.Flags())
	c.Flags().BoolP("include", "i", false, "print the status line and headers")
	c.Flags().BoolP("verbose", "v", false, "print the canonical request and string to sign to stderr")
	c.Flags().BoolP("insecure", "k", false, "do not verify the server's TLS certificate")
	c.Flags().String("cacert", "", "PEM file of the CA certificates to verify the server's TLS certificate with")
	return c
}

// secretEnv is the environment variable curl reads the APISecret from when
// no flag gives it.
const secretEnv = "ACCESS_AUTH_SECRET"

// curlSecret reads the APISecret of curl from --secret-file, --secret or
// $ACCESS_AUTH_SECRET, in that order of preference; a flag set on the
// command line is never ignored for the variable.
func curlSecret(flags *pflag.FlagSet) (string, error) {
	file, _ := flags.GetString("secret-file")
	secret, _ := flags.GetString("secret")
	switch {
	case file != "" && secret != "":
		return "", fmt.Errorf("give the secret with --secret-file or --secret, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--secret-file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			return "", fmt.Errorf("--secret-file: %s is empty", file)
		}
	case secret == "":
		secret = os.Getenv(secretEnv)
	}
	if secret == "" {
		return "", fmt.Errorf("the APISecret is required: --secret-file <file>, $%s, or --secret", secretEnv)
	}
	return secret, nil
}

func runCurl(cmd *cobra.Command, args []string) error {
	flags := cmd.Flags()
	key, _ := flags.GetString("key")
	if key == "" {
		return fmt.Errorf("--key is required")
	}
	secret, err := curlSecret(flags)
	if err != nil {
		return err
	}
	schemeName, _ := flags.GetString("scheme")
	scheme, err := signature.ParseScheme(schemeName)
	if err != nil {
		return err
	}
	method, header, body, err := readRequestFlags(flags)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, args[0], bytes.NewReader(body))
	if err != nil {
		return err
	}
	for name, values := range header {
		req.Header[name] = values
	}
	var opts []signature.Option
	if region, _ := flags.GetString("region"); region != "" {
		opts = append(opts, signature.WithRegion(region))
	}
	if service, _ := flags.GetString("service"); service != "" {
		opts = append(opts, signature.WithService(service))
	}
	var signed signature.Form
	verbose, _ := flags.GetBool("verbose")
	if verbose {
		opts = append(opts, signature.WithSignedForm(&signed))
	}
	if err := signature.Sign(req, scheme, key, secret, opts...); err != nil {
		return err
	}
	if verbose {
		printSignedForm(cmd.ErrOrStderr(), scheme, &signed)
	}
	client, err := curlClient(flags)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out := cmd.OutOrStdout()
	if include, _ := flags.GetBool("include"); include {
		fmt.Fprintf(out, "%s %s\n", resp.Proto, resp.Status)
		_ = resp.Header.Write(out)
		fmt.Fprintln(out)
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		// Like curl --fail, so scripts notice, but the body (the reason) is printed first.
		return fmt.Errorf("the server answered %s", resp.Status)
	}
	return nil
}

// requestFlags are the flags that make a request like curl's: -X, -H, -d.
func requestFlags(flags *pflag.FlagSet) {
	flags.StringP("request", "X", "", "method (default GET, or POST with -d)")
	flags.StringArrayP("header", "H", nil, "header 'Name: value', repeatable")
	flags.StringP("data", "d", "", "request body; @file reads a file")
}

// readRequestFlags reads the method, headers and body of requestFlags.
func readRequestFlags(flags *pflag.FlagSet) (method string, header http.Header, body []byte, err error) {
	method, _ = flags.GetString("request")
	data, _ := flags.GetString("data")
	if strings.HasPrefix(data, "@") {
		if body, err = os.ReadFile(data[1:]); err != nil {
			return "", nil, nil, err
		}
	} else {
		body = []byte(data)
	}
	if method == "" {
		method = http.MethodGet
		if flags.Changed("data") {
			method = http.MethodPost
		}
	}
	header = make(http.Header)
	headers, _ := flags.GetStringArray("header")
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return "", nil, nil, fmt.Errorf("header %q: expected 'Name: value'", h)
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return method, header, body, nil
}

// The markers of printSignedForm's output, which explain --canonical reads.
const (
	canonicalMarker    = "* canonical request"
	stringToSignMarker = "* string to sign:"
)

// printSignedForm prints what curl signed, to diff against the
// canonicalRequest and stringToSign of a debug_signature answer, or to give
// to explain --canonical.
func printSignedForm(w io.Writer, scheme signature.Scheme, f *signature.Form) {
	fmt.Fprintf(w, "%s (%s):\n%s\n%s\n%s\n", canonicalMarker, scheme, f.CanonicalRequest, stringToSignMarker, f.StringToSign)
}
