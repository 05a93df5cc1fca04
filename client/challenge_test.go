package client

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    []Challenge
		wantErr bool
	}{
		{
			name:    "bearer with quoted params",
			headers: []string{`Bearer resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write"`},
			want: []Challenge{{Scheme: "Bearer", Params: map[string]string{
				"resource_metadata": "https://a.example/.well-known/oauth-protected-resource/mcp", "scope": "mcp:read mcp:write"}}},
		},
		{
			name:    "two challenges in one field, token values, BWS",
			headers: []string{`Basic realm="x, y", Bearer error=invalid_token ,error_description = "bad \"quoted\" \\ thing", realm=api`},
			want: []Challenge{
				{Scheme: "Basic", Params: map[string]string{"realm": "x, y"}},
				{Scheme: "Bearer", Params: map[string]string{"error": "invalid_token", "error_description": `bad "quoted" \ thing`, "realm": "api"}},
			},
		},
		{
			name:    "several fields, scheme case and param case",
			headers: []string{`Negotiate abc123==`, `bearer Scope="a", SCOPE="ignored"`},
			want: []Challenge{
				{Scheme: "Negotiate", Params: map[string]string{}, Token68: "abc123=="},
				{Scheme: "bearer", Params: map[string]string{"scope": "a"}},
			},
		},
		{
			name:    "bare schemes and empty list elements",
			headers: []string{`Bearer, , Basic`},
			want: []Challenge{
				{Scheme: "Bearer", Params: map[string]string{}},
				{Scheme: "Basic", Params: map[string]string{}},
			},
		},
		{
			name:    "unterminated quoted string keeps nothing of that challenge's tail",
			headers: []string{`Basic realm="ok", Bearer scope="oops`},
			want: []Challenge{
				{Scheme: "Basic", Params: map[string]string{"realm": "ok"}},
				{Scheme: "Bearer", Params: map[string]string{}},
			},
			wantErr: true,
		},
		{
			name:    "missing value",
			headers: []string{`Bearer a=b, scope=`},
			want:    []Challenge{{Scheme: "Bearer", Params: map[string]string{"a": "b"}}},
			wantErr: true,
		},
		{
			name:    "garbage scheme",
			headers: []string{`"Bearer"`},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenges(tt.headers)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestBearerChallenge(t *testing.T) {
	ch, ok := BearerChallenge([]string{`Basic realm="r"`, `DPoP algs="ES256", Bearer resource_metadata="https://x/prm"`})
	if !ok || ch.Param("RESOURCE_METADATA") != "https://x/prm" {
		t.Fatalf("got %v %v", ch, ok)
	}
	if _, ok := BearerChallenge([]string{`Basic realm="r"`}); ok {
		t.Fatal("found a Bearer challenge where there is none")
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Bearer a="b", c=d`, `Basic x==, Bearer`, `Bearer a="\"`, `,,,`, `A b=c,d=e, F g`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseChallenges([]string{s})
		for _, c := range cs {
			if c.Scheme == "" || strings.ContainsAny(c.Scheme, " \t,=\"") {
				t.Fatalf("bad scheme %q from %q", c.Scheme, s)
			}
			for k := range c.Params {
				if k != strings.ToLower(k) || k == "" {
					t.Fatalf("bad param name %q from %q", k, s)
				}
			}
		}
		if err == nil && strings.TrimSpace(strings.Trim(s, ", \t")) != "" && len(cs) == 0 {
			t.Fatalf("no challenge and no error for %q", s)
		}
	})
}
