package mcpstdio

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("mcp_stdio", parseCaddyfile)
	// Before reverse_proxy, hence after mcp_auth (ordered before basic_auth): no `order` line.
	httpcaddyfile.RegisterDirectiveOrder("mcp_stdio", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses
//
//	mcp_stdio [<command> [<args...>]] {
//		command                 <command> [<args...>]
//		dir                     <path>
//		env                     <NAME> <value>
//		pass_env                <NAME...>
//		user_key                <placeholder>
//		client_capabilities     sampling|elicitation|roots...
//		max_processes           <n>
//		max_processes_per_user  <n>
//		max_concurrent_calls    <n>
//		idle_timeout            <duration>
//		session_timeout         <duration>
//		call_timeout            <duration>
//		start_timeout           <duration>
//		stop_timeout            <duration>
//		ping_timeout            <duration>
//		write_timeout           <duration>
//		max_message_bytes       <n>
//		stderr_bytes_per_minute <n>
//		retry_after             <duration>
//	}
func (m *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if args := d.RemainingArgs(); len(args) > 0 {
		m.Command, m.Args = args[0], args[1:]
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "command":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			m.Command, m.Args = args[0], args[1:]
		case "dir":
			if !d.AllArgs(&m.Dir) {
				return d.ArgErr()
			}
		case "env":
			var name, value string
			if !d.AllArgs(&name, &value) {
				return d.ArgErr()
			}
			if m.Env == nil {
				m.Env = map[string]string{}
			}
			if _, dup := m.Env[name]; dup {
				return d.Errf("env %s set twice", name)
			}
			m.Env[name] = value
		case "pass_env":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return d.ArgErr()
			}
			m.PassEnv = append(m.PassEnv, names...)
		case "client_capabilities":
			caps := d.RemainingArgs()
			if len(caps) == 0 {
				return d.ArgErr()
			}
			m.ClientCapabilities = append(m.ClientCapabilities, caps...)
		case "user_key":
			if !d.AllArgs(&m.UserKey) {
				return d.ArgErr()
			}
		case "max_processes":
			if err := intArg(d, &m.MaxProcesses); err != nil {
				return err
			}
		case "max_processes_per_user":
			if err := intArg(d, &m.MaxProcessesPerUser); err != nil {
				return err
			}
		case "max_concurrent_calls":
			if err := intArg(d, &m.MaxConcurrentCalls); err != nil {
				return err
			}
		case "max_message_bytes":
			if err := intArg(d, &m.MaxMessageBytes); err != nil {
				return err
			}
		case "stderr_bytes_per_minute":
			if err := intArg(d, &m.StderrBytesPerMinute); err != nil {
				return err
			}
		case "idle_timeout":
			if err := durArg(d, &m.IdleTimeout); err != nil {
				return err
			}
		case "session_timeout":
			if err := durArg(d, &m.SessionTimeout); err != nil {
				return err
			}
		case "call_timeout":
			if err := durArg(d, &m.CallTimeout); err != nil {
				return err
			}
		case "start_timeout":
			if err := durArg(d, &m.StartTimeout); err != nil {
				return err
			}
		case "stop_timeout":
			if err := durArg(d, &m.StopTimeout); err != nil {
				return err
			}
		case "ping_timeout":
			if err := durArg(d, &m.PingTimeout); err != nil {
				return err
			}
		case "write_timeout":
			if err := durArg(d, &m.WriteTimeout); err != nil {
				return err
			}
		case "retry_after":
			if err := durArg(d, &m.RetryAfter); err != nil {
				return err
			}
		default:
			return d.Errf("unknown mcp_stdio option %q", d.Val())
		}
	}
	if m.Command == "" {
		return d.Err("mcp_stdio needs a command")
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, v *int) error {
	opt := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return d.Errf("%s: %q is not a positive integer", opt, s)
	}
	*v = n
	return nil
}

func durArg(d *caddyfile.Dispenser, v *caddy.Duration) error {
	opt := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return d.Errf("%s: %q is not a positive duration", opt, s)
	}
	*v = caddy.Duration(dur)
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
