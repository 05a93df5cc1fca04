package mcpauth

import "strings"

// challengeParams are the auth-params of one Bearer challenge (RFC 6750 §3,
// RFC 9728 §5.1). Empty fields are omitted.
type challengeParams struct {
	ResourceMetadata string
	Scope            string
	Error            string
	ErrorDescription string
}

// String renders the WWW-Authenticate value. Every value is a quoted-string
// (RFC 9110 §5.6.4) with '"' and '\' escaped; control characters and non-ASCII
// bytes, which RFC 6750 §3 forbids in these values, are dropped.
func (c challengeParams) String() string {
	var b strings.Builder
	b.Grow(len("Bearer ") + len(c.ResourceMetadata) + len(c.Scope) + len(c.Error) + len(c.ErrorDescription) + 64)
	b.WriteString("Bearer")
	first := true
	add := func(name, val string) {
		if val == "" {
			return
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		writeQuoted(&b, val)
		b.WriteByte('"')
	}
	add("resource_metadata", c.ResourceMetadata)
	add("scope", c.Scope)
	add("error", c.Error)
	add("error_description", c.ErrorDescription)
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			// dropped: not allowed in RFC 6750 auth-param values
		default:
			b.WriteByte(c)
		}
	}
}
