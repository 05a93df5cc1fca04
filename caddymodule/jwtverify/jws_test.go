package jwtverify

import (
	"encoding/json"
	"testing"
)

var headerDecodeCases = []struct {
	name string
	in   string
	fast bool // read by the scanner, not by the map fallback
	want joseHeader
	err  bool
}{
	{"typical", `{"alg":"RS256","kid":"k1","typ":"at+jwt"}`, true,
		joseHeader{alg: "RS256", kid: "k1", typ: "at+jwt", algStr: true, kidStr: true, typStr: true, hasAlg: true, hasKid: true, hasTyp: true}, false},
	{"whitespace and foreign members", " {\n\"alg\" : \"ES256\", \"x5t\":\"abc\", \"jwk\":{\"kty\":\"EC\"} } ", true,
		joseHeader{alg: "ES256", algStr: true, hasAlg: true}, false},
	{"empty object", `{}`, true, joseHeader{}, false},
	{"duplicate alg, last wins", `{"alg":"HS256","alg":"RS256"}`, true, joseHeader{alg: "RS256", algStr: true, hasAlg: true}, false},
	{"crit of any value", `{"alg":"RS256","crit":null}`, true, joseHeader{alg: "RS256", algStr: true, hasAlg: true, crit: true}, false},
	{"escaped key spells alg", `{"\u0061lg":"none"}`, false, joseHeader{alg: "none", algStr: true, hasAlg: true}, false},
	{"case differs: not alg", `{"ALG":"RS256"}`, true, joseHeader{}, false},
	{"kid null", `{"alg":"RS256","kid":null}`, false, joseHeader{alg: "RS256", algStr: true, hasAlg: true, hasKid: true}, false},
	{"kid number", `{"alg":"RS256","kid":7}`, false, joseHeader{alg: "RS256", algStr: true, hasAlg: true, hasKid: true}, false},
	{"alg array", `{"alg":["RS256"]}`, false, joseHeader{hasAlg: true}, false},
	{"non-ASCII kid", `{"alg":"RS256","kid":"ké"}`, false, joseHeader{alg: "RS256", kid: "ké", algStr: true, kidStr: true, hasAlg: true, hasKid: true}, false},
	{"escaped kid", `{"kid":"a\"b"}`, false, joseHeader{kid: `a"b`, kidStr: true, hasKid: true}, false},
	{"null", `null`, false, joseHeader{}, true},
	{"array", `["alg","RS256"]`, false, joseHeader{}, true},
	{"string", `"RS256"`, false, joseHeader{}, true},
	{"truncated", `{"alg":"RS256"`, false, joseHeader{}, true},
	{"trailing garbage", `{"alg":"RS256"}x`, false, joseHeader{}, true},
}

func TestDecodeHeader(t *testing.T) {
	for _, tc := range headerDecodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeHeader([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if err != nil {
				if Reason(err) != "malformed" {
					t.Fatalf("reason %q, want malformed", Reason(err))
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if _, fast := decodeHeaderFast([]byte(tc.in)); fast != tc.fast {
				t.Fatalf("scanner took it: %v, want %v", fast, tc.fast)
			}
		})
	}
}

// FuzzHeaderDecode checks that the scanner, whenever it takes an input,
// reads exactly what golang-jwt's decode into a map reads.
func FuzzHeaderDecode(f *testing.F) {
	for _, tc := range headerDecodeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		data := []byte(in)
		if !json.Valid(data) {
			if _, err := decodeHeader(data); err == nil {
				t.Fatalf("invalid JSON %q decoded", in)
			}
			return
		}
		fast, ok := decodeHeaderFast(data)
		if !ok {
			return
		}
		slow, err := decodeHeaderMap(data)
		if err != nil {
			t.Fatalf("scanner took %q, which the map decode refuses: %v", in, err)
		}
		if fast != slow {
			t.Fatalf("%q: scanner %+v, map %+v", in, fast, slow)
		}
	})
}

func TestSplitCompact(t *testing.T) {
	p := splitCompact("aa.bbb.c")
	if p.header != "aa" || p.payload != "bbb" || p.signature != "c" || p.signingInput != "aa.bbb" {
		t.Fatalf("%+v", p)
	}
	p = splitCompact("..")
	if p.header != "" || p.payload != "" || p.signature != "" || p.signingInput != "." {
		t.Fatalf("%+v", p)
	}
}
