package toolpolicy

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSkipAgreesWithValid: skip accepts a value exactly when encoding/json
// does, for the shapes its loop has to get right (closing the right
// container, commas, keys, empty containers at any depth).
func TestSkipAgreesWithValid(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `[[]]`, `{"a":{}}`, `{"a":[]}`, `[{}]`, `[{},{}]`, `[[],[]]`,
		`{"a":1,"b":[1,2,{"c":[true,false,null]}],"d":"x"}`, ` { "a" : [ 1 , { } ] } `,
		`[1,[2,[3,[4]]],{"a":{"b":{"c":{}}}}]`, `"s"`, `-0.5e+3`, `true`,
		`{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `[}`, `{]`, `{"a":[1}]`, `[{"a":1]}`,
		`{"a":1 "b":2}`, `[1 2]`, `{,}`, `[,]`, `{"a":}`, `[`, `{`, `{"a":1`, `[1,`,
		`{"a":[]]`, `[[]]]`, `{}}`, `{"a"}`, `{"a":1}{`, `[tru]`, `[nul]`, `[01]`, `{"\x01":1}`,
	} {
		s := &scanner{b: []byte(in)}
		got := s.skip() == nil && s.end() == nil && s.depth == 0
		if want := json.Valid([]byte(in)); got != want {
			t.Errorf("skip(%q) accepted %v, encoding/json %v", in, got, want)
		}
	}
}

// TestSkipDepth: nesting up to maxDepth passes, one level more is refused,
// counted from the depth skip starts at.
func TestSkipDepth(t *testing.T) {
	nest := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i%2 == 0 {
				b.WriteString(`{"k":`)
			} else {
				b.WriteString(`[`)
			}
		}
		b.WriteString(`1`)
		for i := n - 1; i >= 0; i-- {
			if i%2 == 0 {
				b.WriteString(`}`)
			} else {
				b.WriteString(`]`)
			}
		}
		return b.String()
	}
	for _, tc := range []struct {
		start, n int
		ok       bool
	}{{0, maxDepth, true}, {0, maxDepth + 1, false}, {3, maxDepth - 3, true}, {3, maxDepth - 2, false}} {
		s := &scanner{b: []byte(nest(tc.n)), depth: tc.start}
		err := s.skip()
		if (err == nil) != tc.ok || (err == nil && (s.i != len(s.b) || s.depth != tc.start)) {
			t.Errorf("depth %d from %d: err %v, at %d of %d, depth %d", tc.n, tc.start, err, s.i, len(s.b), s.depth)
		}
	}
}
