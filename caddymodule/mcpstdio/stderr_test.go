package mcpstdio

import (
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func runStderr(t *testing.T, input string, secrets []string, perMin int, clock *testClock) []observer.LoggedEntry {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	l := newStderrLogger(zap.New(core), secrets, perMin, clock.Now)
	l.run(io.NopCloser(strings.NewReader(input)))
	return logs.All()
}

func TestStderrRedactsAndBounds(t *testing.T) {
	const tok = "ghp_0123456789abcdefghijklmnopqrstuvwxyz"
	clock := &testClock{now: time.Now()}

	// Redaction in short lines; a short "secret" (an empty or tiny value) is not redacted.
	entries := runStderr(t, "using "+tok+" now\nplain line\r\nx 1 x\n", []string{tok, "1", ""}, 1<<20, clock)
	if len(entries) != 3 {
		t.Fatalf("%d entries", len(entries))
	}
	if got := entries[0].ContextMap()["line"]; got != "using [REDACTED] now" {
		t.Errorf("line 1: %q", got)
	}
	if got := entries[1].ContextMap()["line"]; got != "plain line" {
		t.Errorf("line 2: %q", got)
	}
	if got := entries[2].ContextMap()["line"]; got != "x 1 x" {
		t.Errorf("line 3: %q", got)
	}

	// A line longer than the read limit, cut in the middle of the token: no piece of it is logged.
	cut := strings.Repeat("a", maxStderrRead-10) + tok + "\n"
	entries = runStderr(t, cut, []string{tok}, 1<<20, clock)
	if len(entries) != 1 {
		t.Fatalf("long line: %d entries", len(entries))
	}
	m := entries[0].ContextMap()
	line := m["line"].(string)
	if len(line) > maxStderrLine || m["truncated"] != true {
		t.Errorf("long line logged with %d bytes, truncated=%v", len(line), m["truncated"])
	}
	l := newStderrLogger(zap.NewNop(), []string{tok}, 1<<20, clock.Now)
	if got := l.redact(cut[:maxStderrRead], true); strings.Contains(got, tok[:5]) {
		t.Errorf("a cut line keeps the start of the token: ...%q", got[len(got)-20:])
	}

	// The per-minute budget: lines beyond it are counted in one warning, not logged.
	entries = runStderr(t, strings.Repeat("0123456789\n", 10), nil, 35, clock)
	var logged, warned int
	for _, e := range entries {
		switch e.Level {
		case zapcore.InfoLevel:
			logged++
		case zapcore.WarnLevel:
			warned++
			if e.ContextMap()["lines"] != int64(7) {
				t.Errorf("dropped count %v, want 7", e.ContextMap()["lines"])
			}
		}
	}
	if logged != 3 || warned != 1 {
		t.Errorf("logged %d, warned %d; want 3 and 1", logged, warned)
	}
}
