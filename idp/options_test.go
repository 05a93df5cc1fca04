package idp

import (
	"strings"
	"testing"
	"time"
)

// A negative duration is refused by New with the option's name, rather than
// silently meaning "never" (a rate window) or "for ever" (a cached failure).
func TestOptionsRejectNegativeDurations(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Options)
	}{
		{"AuthorizeRateWindow", func(o *Options) { o.AuthorizeRateWindow = -time.Minute }},
		{"CIMDFailureCacheTTL", func(o *Options) { o.CIMDFailureCacheTTL = -time.Second }},
		{"RegistrationRateWindow", func(o *Options) { o.RegistrationRateWindow = -1 }},
		{"AccessTokenTTL", func(o *Options) { o.AccessTokenTTL = -time.Hour }},
		{"RefreshTokenTTL", func(o *Options) { o.RefreshTokenTTL = -time.Hour }},
		{"CodeTTL", func(o *Options) { o.CodeTTL = -time.Second }},
		{"SessionTTL", func(o *Options) { o.SessionTTL = -time.Second }},
		{"LoginTTL", func(o *Options) { o.LoginTTL = -time.Second }},
		{"CleanupInterval", func(o *Options) { o.CleanupInterval = -time.Second }},
		{"KeyRotationInterval", func(o *Options) { o.KeyRotationInterval = -time.Hour }},
		{"KeyPrePublish", func(o *Options) { o.KeyPrePublish = -time.Hour }},
		{"CIMDTimeout", func(o *Options) { o.CIMDTimeout = -time.Second }},
		{"CIMDCacheTTL", func(o *Options) { o.CIMDCacheTTL = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Issuer: "https://idp.example.com", DevLogin: true}
			tc.set(&o)
			srv, err := New(o)
			if err == nil {
				srv.Close()
				t.Fatal("negative duration accepted")
			}
			if !strings.Contains(err.Error(), "Options."+tc.name+" must not be negative") {
				t.Fatalf("error %q does not name %s", err, tc.name)
			}
		})
	}
	// RefreshGrace keeps its documented meaning: negative is 0 (no grace).
	srv, err := New(Options{Issuer: "https://idp.example.com", DevLogin: true, RefreshGrace: -time.Second})
	if err != nil {
		t.Fatalf("negative RefreshGrace: %v", err)
	}
	srv.Close()
}

// Replicas reload the signing keys once per CleanupInterval: a key pre-published for no longer
// than that could sign before every replica publishes it.
func TestOptionsKeyPrePublishOutlastsCleanup(t *testing.T) {
	for _, tc := range []struct {
		prePublish, cleanup time.Duration
		ok                  bool
	}{
		{0, 0, true},                          // defaults: 1h and 5m
		{time.Hour, time.Hour, false},         // equal is not enough
		{10 * time.Minute, 0, true},           // against the default 5m
		{0, 2 * time.Hour, false},             // the default 1h against 2h
		{time.Minute, 30 * time.Second, true}, // both short
	} {
		o := Options{Issuer: "https://idp.example.com", DevLogin: true, KeyPrePublish: tc.prePublish, CleanupInterval: tc.cleanup}
		err := o.setDefaults()
		if (err == nil) != tc.ok {
			t.Errorf("KeyPrePublish %v, CleanupInterval %v: %v, want ok=%v", tc.prePublish, tc.cleanup, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "KeyPrePublish") {
			t.Errorf("error %q does not name KeyPrePublish", err)
		}
	}
}
