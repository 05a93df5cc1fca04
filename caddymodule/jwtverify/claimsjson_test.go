package jwtverify

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodeBoth decodes data with tokenClaims.UnmarshalJSON (through
// encoding/json, as golang-jwt does) and with plain encoding/json.
func decodeBoth(data []byte) (fast, slow tokenClaims, errFast, errSlow error) {
	errFast = json.Unmarshal(data, &fast)
	type plain tokenClaims
	errSlow = json.Unmarshal(data, (*plain)(&slow))
	return
}

func sameClaims(a, b tokenClaims) bool {
	raw := func(x, y json.RawMessage) bool { return bytes.Equal(x, y) && (x == nil) == (y == nil) }
	return a.Iss == b.Iss && a.Sub == b.Sub && a.Jti == b.Jti && a.ClientID == b.ClientID && a.Azp == b.Azp &&
		raw(a.Aud, b.Aud) && raw(a.Exp, b.Exp) && raw(a.Nbf, b.Nbf) && raw(a.Iat, b.Iat) &&
		raw(a.Scope, b.Scope) && raw(a.Scp, b.Scp) && raw(a.Typ, b.Typ)
}

var claimsDecodeCases = []struct {
	name string
	in   string
	fast bool // decoded by the scanner, not the fallback
}{
	{"typical", `{"iss":"https://idp.example.com","sub":"github:42","aud":"https://mcp.example.com/mcp","client_id":"c1","scope":"mcp:tools github:repo","iat":1785240000,"exp":1785243600,"jti":"j1"}`, true},
	{"whitespace", " {\n\t\"iss\" : \"a\" ,\r\n \"exp\": 1.5e9 } ", true},
	{"empty", `{}`, true},
	{"aud array and scp", `{"aud":["a","b"],"scp":["x","y"],"exp":1}`, true},
	{"foreign nested", `{"cnf":{"jkt":"x","n":[1,{"a":"}"}]},"act":{"sub":"\"}"},"exp":2,"sub":"s"}`, true},
	{"null members", `{"iss":null,"aud":null,"exp":null,"typ":null}`, true},
	{"duplicate keys last wins", `{"sub":"a","sub":"b","exp":1,"exp":2}`, true},
	{"duplicate with null", `{"sub":"a","sub":null}`, true},
	{"exp as string kept raw", `{"exp":"123"}`, true},
	{"typ claim", `{"typ":"ID"}`, true},
	{"case variant key", `{"ISS":"evil","iss":"good"}`, false},
	{"case variant after", `{"iss":"good","Iss":"evil"}`, false},
	{"escaped key", `{"\u0069ss":"x"}`, false},
	{"non-ASCII key fold", "{\"\u017fub\":\"x\"}", false},
	{"escaped value", `{"sub":"a\"b\\c\u00e9"}`, false},
	{"non-ASCII value", "{\"sub\":\"jos\u00e9\"}", false},
	{"invalid UTF-8 value", "{\"sub\":\"a\xffb\"}", false},
	{"number for string", `{"iss":5}`, false},
	{"object for string", `{"sub":{"a":1}}`, false},
	{"bool for string", `{"azp":true}`, false},
	{"array top level", `[1,2]`, false},
	{"string top level", `"x"`, false},
	{"number top level", `5`, false},
}

func TestClaimsDecodeMatchesEncodingJSON(t *testing.T) {
	for _, tt := range claimsDecodeCases {
		t.Run(tt.name, func(t *testing.T) {
			fast, slow, errFast, errSlow := decodeBoth([]byte(tt.in))
			if (errFast == nil) != (errSlow == nil) {
				t.Fatalf("errors differ: fast %v, encoding/json %v", errFast, errSlow)
			}
			if !sameClaims(fast, slow) {
				t.Fatalf("claims differ:\nfast %+v\nslow %+v", fast, slow)
			}
			var c tokenClaims
			if got := c.decodeFast([]byte(tt.in)); got != tt.fast {
				t.Fatalf("decodeFast = %v, want %v", got, tt.fast)
			}
		})
	}
}

// TestClaimsDecodeFallbackResets checks that a half-done fast decode leaves
// no trace before encoding/json decodes the object again.
func TestClaimsDecodeFallbackResets(t *testing.T) {
	in := []byte(`{"sub":"fast","aud":"x","iss":5}`)
	fast, slow, errFast, errSlow := decodeBoth(in)
	if errFast == nil || errSlow == nil || !sameClaims(fast, slow) {
		t.Fatalf("fast %+v %v, slow %+v %v", fast, errFast, slow, errSlow)
	}
}

// FuzzClaimsDecode: for every valid JSON input, UnmarshalJSON's result and
// error status equal encoding/json's own decoding.
func FuzzClaimsDecode(f *testing.F) {
	for _, tt := range claimsDecodeCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		fast, slow, errFast, errSlow := decodeBoth(data)
		if (errFast == nil) != (errSlow == nil) || !sameClaims(fast, slow) {
			t.Fatalf("differs for %q:\nfast %+v %v\nslow %+v %v", data, fast, errFast, slow, errSlow)
		}
		if !reflect.DeepEqual(fast.aud, slow.aud) {
			t.Fatal("unexported state touched")
		}
	})
}

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{`"abc"`, `""`, `"a\"b"`, `"\u0041"`, "\"\u00e9\"", "\"a\xffb\"", `null`, `5`, `["a"]`, `{}`, `true`} {
		got, ok := jsonString(json.RawMessage(in))
		var want string
		err := json.Unmarshal([]byte(in), &want)
		if ok != (err == nil) || got != want {
			t.Errorf("jsonString(%q) = %q, %v; encoding/json %q, %v", in, got, ok, want, err)
		}
	}
}
