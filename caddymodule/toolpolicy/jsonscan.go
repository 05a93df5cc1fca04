package toolpolicy

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
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
	// Every whitespace byte is at most ' ': one comparison settles the
	// usual case, compact JSON.
	for s.i < len(s.b) && s.b[s.i] <= ' ' {
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
	b, start := s.b, s.i
	i := start + 1
	plain = true
	for {
		// Runs of ordinary characters, the bulk of any string: eight
		// bytes at a time, straight to the first that needs a look (the
		// lowest byte special8 marks), or byte by byte near the end.
		for i+8 <= len(b) {
			if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && !strSpecial[b[i]] {
			i++
		}
		if i >= len(b) {
			return nil, false, errSyntax
		}
		switch c := b[i]; {
		case c == '"':
			i++
			s.i = i
			return b[start:i], plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return nil, false, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return nil, false, errSyntax
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return nil, false, errSyntax
					}
				}
				i += 6
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		default: // non-ASCII
			plain = false
			i++
		}
	}
}

// special8 is non-zero when one of the eight bytes of w (little-endian: the
// first byte lowest) is one that strSpecial marks, and then its lowest set
// bit is the top bit of the first such byte. A zero byte of w^'"' or
// w^'\\' borrows when one is subtracted, and so does a byte below 0x20
// when 0x20 is: either way its top bit ends up set; a byte of 0x80 or more
// has it already. An ordinary byte's top bit stays clear, and a borrow only
// ever spreads upwards from a special byte, so bits above the first special
// byte may be set for ordinary ones but none below it.
func special8(w uint64) uint64 {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	q, bs := w^(ones*'"'), w^(ones*'\\')
	return ((q - ones) | (bs - ones) | (w - ones*0x20) | w) & tops
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
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// skip scans and discards one value, validating it. It loops where object
// and array would recurse, with no callback per member: a call's
// arguments, the bulk of most request bodies, pass through here. Nesting
// counts against maxDepth with the scanner's depth, as in object and
// array.
func (s *scanner) skip() error {
	base := s.depth
	var objects [maxDepth/64 + 1]uint64 // bit d: the container open at depth base+d+1 is an object
values:
	for {
		switch c := s.peek(); {
		case c == '{' || c == '[':
			s.i++
			if s.depth++; s.depth > maxDepth {
				return errSyntax
			}
			d := s.depth - base - 1
			if c == '{' {
				objects[d/64] |= 1 << (d % 64)
				if s.peek() != '}' {
					if _, _, err := s.key(); err != nil {
						return err
					}
					continue values
				}
			} else {
				objects[d/64] &^= 1 << (d % 64)
				if s.peek() != ']' {
					continue values
				}
			}
			s.i++ // an empty container
			s.depth--
		case c == '"':
			if _, _, err := s.str(); err != nil {
				return err
			}
		case c == 't':
			if err := s.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
		case c == '-' || c >= '0' && c <= '9':
			if err := s.number(); err != nil {
				return err
			}
		default:
			return errSyntax
		}
		// A value ended: close what it ends, then go on to the next
		// member or element.
		for s.depth > base {
			d := s.depth - base - 1
			obj := objects[d/64]&(1<<(d%64)) != 0
			switch c := s.peek(); {
			case c == ',':
				s.i++
				if obj {
					if _, _, err := s.key(); err != nil {
						return err
					}
				}
				continue values
			case obj && c == '}', !obj && c == ']':
				s.i++
				s.depth--
			default:
				return errSyntax
			}
		}
		return nil
	}
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

// open consumes the '{' or '[' (c) that starts a container and reports
// whether it has a first member or element (more), or was empty, in which
// case its close is consumed too. The scanner is then at the first member's
// key or first element; after each, call next.
func (s *scanner) open(c byte) (more bool, err error) {
	if err := s.expect(c); err != nil {
		return false, err
	}
	if s.depth++; s.depth > maxDepth {
		return false, errSyntax
	}
	if s.peek() == c+2 { // '}' is '{'+2, ']' is '['+2
		s.i++
		s.depth--
		return false, nil
	}
	return true, nil
}

// next follows a member or element of a container that open started: it
// consumes the ',' before the next one (more) or the container's close
// (c+2 for the c given to open).
func (s *scanner) next(c byte) (more bool, err error) {
	switch s.peek() {
	case ',':
		s.i++
		return true, nil
	case c + 2:
		s.i++
		s.depth--
		return false, nil
	}
	return false, errSyntax
}

// key scans an object member's key and the ':' after it, and returns the
// key's raw span and whether it is plain (see str), with the scanner at the
// value.
func (s *scanner) key() (raw []byte, plain bool, err error) {
	if raw, plain, err = s.str(); err != nil {
		return nil, false, err
	}
	if err := s.expect(':'); err != nil {
		return nil, false, err
	}
	s.ws()
	return raw, plain, nil
}

// object scans an object, calling member for each key (its raw span and
// whether it is plain, see str) with the scanner positioned at the value;
// member must consume the value.
func (s *scanner) object(member func(key []byte, plain bool) error) error {
	more, err := s.open('{')
	for err == nil && more {
		var raw []byte
		var plain bool
		if raw, plain, err = s.key(); err != nil {
			break
		}
		if err = member(raw, plain); err != nil {
			break
		}
		more, err = s.next('{')
	}
	return err
}

// array scans an array, calling elem with the scanner at each element.
func (s *scanner) array(elem func() error) error {
	more, err := s.open('[')
	for err == nil && more {
		s.ws()
		if err = elem(); err != nil {
			break
		}
		more, err = s.next('[')
	}
	return err
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
		if string(k) == want {
			return true // as every client writes it
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
