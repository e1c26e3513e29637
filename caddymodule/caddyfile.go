package caddymodule

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/signature"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("access_auth", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("access_auth", parseHandler)
	httpcaddyfile.RegisterHandlerDirective("access_auth_admin", parseAdminHandler)
	// access_auth right after basic_auth: before request_header, respond,
	// reverse_proxy, file_server and every other handler that could answer
	// first. Caddy orders plugins only relative to standard directives, and
	// each insertion goes right after basic_auth, so registering
	// access_auth_admin first leaves it right after access_auth.
	httpcaddyfile.RegisterDirectiveOrder("access_auth_admin", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("access_auth", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption sets up the access_auth app from the global option:
//
//	access_auth {
//		store file [<path>]
//		store redis <url>...
//		store redis {
//			addrs <host:port>...
//			master_name <name>
//			username <u>
//			password <p>
//			db <n>
//			tls
//		}
//		key_prefix <prefix>
//		master_key <base64>...
//		cache {
//			max_entries <n>
//			ttl <duration>
//			negative_ttl <duration>
//		}
//		max_stale <duration>
//		local_nonces <count>
//		body_buffer {
//			max_bytes <size>
//			max_bodies <count>
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("access_auth: the global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "access_auth", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile reads the access_auth global option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option's name
	if d.NextArg() {
		return d.Errf("access_auth: unexpected argument %q, expected a block", d.Val())
	}
	for d.NextBlock(0) {
		sub := d.Val()
		switch sub {
		case "store":
			if a.Store != nil {
				return d.Err("access_auth: store: given twice")
			}
			s, err := parseStore(d)
			if err != nil {
				return err
			}
			a.Store = s
		case "key_prefix":
			if err := oneArg(d, "access_auth", &a.KeyPrefix); err != nil {
				return err
			}
		case "master_key":
			given := len(a.MasterKeys)
			for d.NextArg() {
				a.MasterKeys = append(a.MasterKeys, d.Val())
				if err := atToken(d, "access_auth", checkMasterKey(len(a.MasterKeys), d.Val(), false)); err != nil {
					return err
				}
			}
			if len(a.MasterKeys) == given {
				return d.Err("access_auth: master_key: expected one or more base64 keys")
			}
		case "cache":
			if d.NextArg() {
				return d.Errf("access_auth: cache: unexpected argument %q, expected a block", d.Val())
			}
			if a.Cache == nil {
				a.Cache = new(CacheConfig)
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				var err error
				switch d.Val() {
				case "max_entries":
					var n string
					if err := oneArg(d, "access_auth: cache", &n); err != nil {
						return err
					}
					a.Cache.MaxEntries, err = strconv.Atoi(n)
					if err != nil || a.Cache.MaxEntries <= 0 {
						return d.Errf("access_auth: cache: max_entries: expected a positive number, got %q", n)
					}
				case "ttl":
					err = durationArg(d, "access_auth: cache", &a.Cache.TTL)
				case "negative_ttl":
					err = durationArg(d, "access_auth: cache", &a.Cache.NegativeTTL)
				default:
					err = d.Errf("access_auth: cache: unknown subdirective %q, expected max_entries, ttl or negative_ttl", d.Val())
				}
				if err != nil {
					return err
				}
			}
		case "max_stale":
			if err := durationArg(d, "access_auth", &a.MaxStale); err != nil {
				return err
			}
		case "local_nonces":
			var n string
			if err := oneArg(d, "access_auth", &n); err != nil {
				return err
			}
			var err error
			if a.LocalNonces, err = strconv.Atoi(n); err != nil || a.LocalNonces <= 0 {
				return d.Errf("access_auth: local_nonces: expected a positive number, got %q", n)
			}
		case "body_buffer":
			if err := parseBodyBuffer(d, a); err != nil {
				return err
			}
		case "audit_retention":
			if err := durationArg(d, "access_auth", &a.AuditRetention); err != nil {
				return err
			}
		default:
			return d.Errf("access_auth: unknown subdirective %q, expected store, key_prefix, master_key, cache, max_stale, local_nonces, body_buffer or audit_retention", sub)
		}
	}
	if err := a.check(false); err != nil {
		return d.Errf("access_auth: %v", err)
	}
	return nil
}

// parseBodyBuffer reads the body_buffer block.
func parseBodyBuffer(d *caddyfile.Dispenser, a *App) error {
	const where = "access_auth: body_buffer"
	if d.NextArg() {
		return d.Errf("%s: unexpected argument %q, expected a block", where, d.Val())
	}
	if a.BodyBuffer == nil {
		a.BodyBuffer = new(BodyBufferConfig)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var arg string
		switch d.Val() {
		case "max_bytes":
			if err := sizeArg(d, where, "1GiB", &a.BodyBuffer.MaxBytes); err != nil {
				return err
			}
		case "max_bodies":
			if err := oneArg(d, where, &arg); err != nil {
				return err
			}
			n, err := strconv.Atoi(arg)
			if err != nil || n <= 0 {
				return d.Errf("%s: max_bodies: expected a positive number, got %q", where, arg)
			}
			a.BodyBuffer.MaxBodies = n
		default:
			return d.Errf("%s: unknown subdirective %q, expected max_bytes or max_bodies", where, d.Val())
		}
	}
	return nil
}

// parseStore reads `store file [<path>]`, `store redis <url>...` or the
// block form `store redis { … }`.
func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	if !d.NextArg() {
		return nil, d.Err("access_auth: store: expected file or redis")
	}
	s := &StoreConfig{Type: d.Val()}
	switch s.Type {
	case StoreFile:
		if d.NextArg() {
			s.Path = d.Val()
		}
		if d.NextArg() {
			return nil, d.Errf("access_auth: store file: unexpected argument %q, expected at most a path", d.Val())
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("access_auth: store file: takes no block")
		}
	case StoreRedis:
		for d.NextArg() {
			if err := atToken(d, "access_auth", checkStoreURL(d.Val(), false)); err != nil {
				return nil, err
			}
			s.URLs = append(s.URLs, d.Val())
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if len(s.URLs) > 0 {
				return nil, d.Errf("access_auth: %v", errRedisURLsAndBlock)
			}
			if err := parseRedisBlock(d, s); err != nil {
				return nil, err
			}
		}
		if len(s.URLs) == 0 && len(s.Addrs) == 0 {
			return nil, d.Errf("access_auth: %v", errRedisNoServer)
		}
	default:
		return nil, d.Errf("access_auth: store: unknown type %q, expected file or redis", s.Type)
	}
	return s, nil
}

// parseRedisBlock reads one line of the `store redis { … }` block.
func parseRedisBlock(d *caddyfile.Dispenser, s *StoreConfig) error {
	const where = "access_auth: store redis"
	switch d.Val() {
	case "addrs":
		addrs := d.RemainingArgs()
		if len(addrs) == 0 {
			return d.Errf("%s: addrs: expected one or more host:port", where)
		}
		s.Addrs = append(s.Addrs, addrs...)
	case "master_name":
		return oneArg(d, where, &s.MasterName)
	case "username":
		return oneArg(d, where, &s.Username)
	case "password":
		return oneArg(d, where, &s.Password)
	case "db":
		var n string
		if err := oneArg(d, where, &n); err != nil {
			return err
		}
		db, err := strconv.Atoi(n)
		if err != nil || db < 0 {
			return d.Errf("access_auth: %v", errRedisDB(strconv.Quote(n)))
		}
		s.DB = db
	case "tls":
		if d.NextArg() {
			return d.Errf("%s: tls: takes no argument", where)
		}
		s.TLS = true
	default:
		return d.Errf("%s: unknown subdirective %q, expected addrs, master_name, username, password, db or tls", where, d.Val())
	}
	return nil
}

// parseHandler sets up the access_auth handler:
//
//	access_auth [<matcher>] [<group>] {
//		group <name>
//		environment <name>
//		schemes <scheme>...
//		max_skew <duration>
//		replay_protection auto|store|local|off
//		max_body <size>
//		allow_unsigned_payload
//		region <name>
//		service <name>
//		hide_credentials
//		forward_identity on|off
//		rate_limit_headers on|off
//		debug_signature
//	}
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile reads the access_auth directive.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	const where = "access_auth"
	d.Next() // the directive's name
	if d.NextArg() {
		h.Group = d.Val()
		if err := atToken(d, where, checkGroup(h.Group)); err != nil {
			return err
		}
	}
	if d.NextArg() {
		return d.Errf("%s: unexpected argument %q, expected at most a group name", where, d.Val())
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "group":
			if err = oneArg(d, where, &h.Group); err == nil {
				err = atToken(d, where, checkGroup(h.Group))
			}
		case "environment":
			if err = oneArg(d, where, &h.Environment); err == nil {
				err = atToken(d, where, checkEnvironment(h.Environment))
			}
		case "schemes":
			err = schemesArgs(d, where, &h.Schemes)
		case "max_skew":
			if err = durationArg(d, where, &h.MaxSkew); err == nil {
				err = atToken(d, where, enforcement.CheckMaxSkew(time.Duration(h.MaxSkew)))
			}
		case "replay_protection":
			if err = oneArg(d, where, &h.ReplayProtection); err == nil {
				err = atToken(d, where, checkReplayProtection(h.ReplayProtection))
			}
		case "max_body":
			err = sizeArg(d, where, "100MiB", &h.MaxBody)
		case "allow_unsigned_payload":
			err = flagArg(d, where, &h.AllowUnsignedPayload)
		case "region":
			err = oneArg(d, where, &h.Region)
		case "service":
			err = oneArg(d, where, &h.Service)
		case "hide_credentials":
			err = flagArg(d, where, &h.HideCredentials)
		case "forward_identity":
			var on bool
			if err = onOffArg(d, where, &on); err == nil {
				h.ForwardIdentity = &on
			}
		case "rate_limit_headers":
			var on bool
			if err = onOffArg(d, where, &on); err == nil {
				h.RateLimitHeaders = &on
			}
		case "debug_signature":
			err = flagArg(d, where, &h.DebugSignature)
		default:
			err = d.Errf("%s: unknown subdirective %q, expected group, environment, schemes, max_skew, "+
				"replay_protection, max_body, allow_unsigned_payload, region, service, hide_credentials, "+
				"forward_identity, rate_limit_headers or debug_signature", where, d.Val())
		}
		if err != nil {
			return err
		}
	}
	if err := h.check(); err != nil {
		return d.Errf("%s: %v", where, err)
	}
	return nil
}

// parseAdminHandler sets up the access_auth_admin handler:
//
//	access_auth_admin [<matcher>] {
//		token <token>...   # each at least 32 characters; {env.*} advised
//		console on|off
//	}
func parseAdminHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(AdminHandler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile reads the access_auth_admin directive.
func (h *AdminHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	const where = "access_auth_admin"
	d.Next() // the directive's name
	if d.NextArg() {
		return d.Errf("%s: unexpected argument %q, expected a block", where, d.Val())
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "token":
			given := len(h.Tokens)
			for err == nil && d.NextArg() {
				h.Tokens = append(h.Tokens, d.Val())
				err = atToken(d, where, checkToken(len(h.Tokens)-1, d.Val()))
			}
			if err == nil && len(h.Tokens) == given {
				err = d.Errf("%s: token: expected one or more tokens", where)
			}
		case "console":
			var on bool
			if err = onOffArg(d, where, &on); err == nil {
				h.Console = &on
			}
		default:
			err = d.Errf("%s: unknown subdirective %q, expected token or console", where, d.Val())
		}
		if err != nil {
			return err
		}
	}
	if err := h.check(); err != nil {
		return d.Errf("%s: %v", where, err)
	}
	return nil
}

// atToken is err as an error at the current token (so that it names the
// token's line), nil for nil.
func atToken(d *caddyfile.Dispenser, where string, err error) error {
	if err == nil {
		return nil
	}
	return d.Errf("%s: %v", where, err)
}

// schemesArgs reads the scheme names of `schemes`, each checked at its
// token.
func schemesArgs(d *caddyfile.Dispenser, where string, dst *[]string) error {
	var names []string
	for d.NextArg() {
		if err := atToken(d, where, checkScheme(d.Val())); err != nil {
			return err
		}
		names = append(names, d.Val())
	}
	if len(names) == 0 {
		return d.Errf("%s: schemes: expected one or more of %s", where, signature.ExpectedSchemes())
	}
	*dst = names
	return nil
}

// oneArg reads exactly one argument of the current subdirective.
func oneArg(d *caddyfile.Dispenser, where string, dst *string) error {
	sub := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: %s: expected one argument", where, sub)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: %s: unexpected argument %q, expected one argument", where, sub, d.Val())
	}
	return nil
}

// sizeArg reads the one argument of the current subdirective as a size
// in bytes (100MiB, 1GB …) into dst; example shows one in the error.
func sizeArg(d *caddyfile.Dispenser, where, example string, dst *int64) error {
	sub := d.Val()
	var size string
	if err := oneArg(d, where, &size); err != nil {
		return err
	}
	n, err := humanize.ParseBytes(size)
	if err != nil || n == 0 || n > 1<<62 {
		return d.Errf("%s: %s: invalid size %q, expected a size such as %s", where, sub, size, example)
	}
	*dst = int64(n)
	return nil
}

func durationArg(d *caddyfile.Dispenser, where string, dst *caddy.Duration) error {
	sub := d.Val()
	var s string
	if err := oneArg(d, where, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return d.Errf("%s: %s: invalid duration %q, expected a positive duration such as 15m", where, sub, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

func flagArg(d *caddyfile.Dispenser, where string, dst *bool) error {
	sub := d.Val()
	if d.NextArg() {
		return d.Errf("%s: %s: takes no argument, got %q", where, sub, d.Val())
	}
	*dst = true
	return nil
}

func onOffArg(d *caddyfile.Dispenser, where string, dst *bool) error {
	sub := d.Val()
	var v string
	if err := oneArg(d, where, &v); err != nil {
		return err
	}
	switch v {
	case "on":
		*dst = true
	case "off":
		*dst = false
	default:
		return d.Errf("%s: %s: expected on or off, got %q", where, sub, v)
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*AdminHandler)(nil)
)
