package toolpolicy

import (
	"encoding/json"
	"errors"
	"strings"
)

// A minimal, strict JSON scanner over a byte slice. It validates everything
// it passes over (RFC 8259 grammar, depth-bounded) but decodes only the
// strings the engine reads, so a tools/call body's arguments are checked,
// never unmarshalled. Keys are compared as Go's encoding/json compares them
// to struct fields (case-insensitively), and a key seen twice is an error:
// backends disagree on which duplicate wins, and the gateway must decide on
// exactly what the backend will execute.

// maxDepth bounds nesting; deeper JSON is refused rather than recursed into.
const maxDepth = 256

var errSyntax = errors.New("invalid JSON")

type scanner struct {
	b     []byte
	i     int
	depth int
}

// ws skips insignificant whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next significant byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// expect consumes c after whitespace.
func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errSyntax
	}
	s.i++
	return nil
}

// str scans a string at s.i and returns its raw span (quotes included) and
// whether it is plain: ASCII without escapes, so its content is its bytes.
func (s *scanner) str() (raw []byte, plain bool, err error) {
	if s.peek() != '"' {
		return nil, false, errSyntax
	}
	start := s.i
	s.i++
	plain = true
	for s.i < len(s.b) {
		// Runs of ordinary characters, the bulk of any string, in a tight loop.
		for s.i < len(s.b) && !strSpecial[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], plain, nil
		case c == '\\':
			plain = false
			if s.i+1 >= len(s.b) {
				return nil, false, errSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, errSyntax
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false, errSyntax
					}
				}
				s.i += 6
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		default:
			if c >= 0x80 {
				plain = false
			}
			s.i++
		}
	}
	return nil, false, errSyntax
}

// strSpecial marks the bytes a string scan must look at: the closing
// quote, an escape, control characters and non-ASCII bytes.
var strSpecial = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// decodeString returns the content of a raw JSON string span as Go's
// encoding/json decodes it (escapes resolved, invalid UTF-8 replaced by
// U+FFFD), taking the content as is when it is plain.
func decodeString(raw []byte, plain bool) (string, error) {
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errSyntax
	}
	return v, nil
}

// value scans any JSON value and returns its raw span.
func (s *scanner) value() ([]byte, error) {
	c := s.peek()
	start := s.i
	var err error
	switch {
	case c == '{':
		err = s.object(func([]byte, bool) error { return s.skip() })
	case c == '[':
		err = s.array(func() error { return s.skip() })
	case c == '"':
		_, _, err = s.str()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		err = s.number()
	default:
		err = errSyntax
	}
	if err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// skip scans and discards a value.
func (s *scanner) skip() error {
	_, err := s.value()
	return err
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// object scans an object, calling member for each key (its raw span and
// whether it is plain, see str) with the scanner positioned at the value;
// member must consume the value.
func (s *scanner) object(member func(key []byte, plain bool) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := member(raw, plain); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// array scans an array, calling elem with the scanner at each element.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// end checks that only whitespace follows.
func (s *scanner) end() error {
	if s.peek() != 0 || s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// keyIs reports whether a raw object key names want, compared as Go's
// encoding/json matches a key to a struct field: exactly or
// case-insensitively with bytes.EqualFold (its foldName is documented to be
// identical), so "Name" and "paramſ" count as "name" and "params", while
// "urı" is not "uri". want is lower-case ASCII.
func keyIs(raw []byte, plain bool, want string) bool {
	if plain {
		k := raw[1 : len(raw)-1]
		if len(k) != len(want) {
			return false
		}
		for i := range k {
			c := k[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != want[i] {
				return false
			}
		}
		return true
	}
	k, err := decodeString(raw, false)
	return err == nil && strings.EqualFold(k, want)
}
