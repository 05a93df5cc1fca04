package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// aliceJSON is GitHub's /user answer for alice, served by a held fault.
const aliceJSON = `{"login":"alice","id":1001,"name":"Alice Example","public_repos":46,"followers":5,"following":0}`

// stdioSession is the program's stdio server run in-process on pipes.
type stdioSession struct {
	t         *testing.T
	in        *io.PipeWriter
	responses chan map[string]any
	done      chan error
	logs      *testutil.SyncBuffer
}

// startStdio runs serve (run or runStdio) on pipes; the returned session writes to its stdin and
// reads its responses.
func startStdio(t *testing.T, serve func(stdin io.Reader, stdout io.Writer, stderr io.Writer) error) *stdioSession {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &stdioSession{t: t, in: inW, responses: make(chan map[string]any, 16), done: make(chan error, 1),
		logs: &testutil.SyncBuffer{}}
	go func() {
		err := serve(inR, outW, s.logs)
		outW.Close()
		s.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsable": sc.Text()}
			}
			s.responses <- m
		}
		close(s.responses)
	}()
	t.Cleanup(func() { inW.Close() }) // releases the stdin reader after a shutdown by context
	return s
}

func (s *stdioSession) send(msg string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, msg+"\n"); err != nil {
		s.t.Fatalf("write to stdin: %v", err)
	}
}

// response returns the next message the server writes; the 20s bound only keeps a broken server
// from hanging the test.
func (s *stdioSession) response() map[string]any {
	s.t.Helper()
	select {
	case m, ok := <-s.responses:
		if !ok {
			s.t.Fatalf("stdout closed; log:\n%s", s.logs.String())
		}
		return m
	case <-time.After(20 * time.Second):
		s.t.Fatalf("no response; log:\n%s", s.logs.String())
	}
	return nil
}

func (s *stdioSession) exit() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(20 * time.Second):
		s.t.Fatalf("the server did not return; log:\n%s", s.logs.String())
	}
	return nil
}

// waitFor polls cond (the server works on other goroutines); the bound only keeps a broken server
// from hanging the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// handshake initializes the session and sends a get_user_info call with id 2, returning once
// GitHub has received its request.
func (s *stdioSession) handshake(fake *githubfake.Fake) {
	s.t.Helper()
	s.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if r := s.response(); fmt.Sprint(r["id"]) != "1" || r["result"] == nil {
		s.t.Fatalf("initialize: %v", r)
	}
	s.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	s.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_user_info","arguments":{}}}`)
	waitFor(s.t, "the call to reach GitHub", func() bool { return len(fake.Requests()) == 1 })
}

// TestStdioFinishesCallsInFlight: a call in flight when stdin closes, or when the program is told
// to stop (SIGTERM cancels run's context), finishes and its response is written before run
// returns; nothing is cancelled or logged as a network error.
func TestStdioFinishesCallsInFlight(t *testing.T) {
	for _, stop := range []string{"stdin closes", "SIGTERM"} {
		t.Run(stop, func(t *testing.T) {
			fake, apiURL := startFake(t)
			hold := make(chan struct{})
			fake.FailNext(githubfake.Fault{Body: aliceJSON, Hold: hold})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := startStdio(t, func(stdin io.Reader, stdout, stderr io.Writer) error {
				return run(ctx, []string{"-transport", "stdio", "-github-api-url", apiURL, "-log-level", "debug"},
					stdin, stdout, stderr, func(string) string { return githubfake.AliceToken })
			})
			s.handshake(fake)
			if stop == "stdin closes" {
				s.in.Close()
			} else {
				cancel()
			}
			// The server has seen the end and is waiting; only now may GitHub answer.
			waitFor(t, "the drain", func() bool { return strings.Contains(s.logs.String(), "letting the calls in flight finish") })
			close(hold)
			r := s.response()
			res, _ := r["result"].(map[string]any)
			if fmt.Sprint(r["id"]) != "2" || res == nil || res["isError"] == true ||
				!strings.Contains(fmt.Sprint(res["content"]), "GitHub user alice") {
				t.Errorf("response to the call in flight: %v", r)
			}
			if err := s.exit(); err != nil {
				t.Errorf("run: %v", err)
			}
			logs := s.logs.String()
			for _, bad := range []string{"github call failed", "cancel", "network", "level=ERROR", "level=WARN", githubfake.AliceToken} {
				if strings.Contains(logs, bad) {
					t.Errorf("log contains %q:\n%s", bad, logs)
				}
			}
			if !strings.Contains(logs, "in_flight=1") || !strings.Contains(logs, "stopped") {
				t.Errorf("log lacks the drain or the stop:\n%s", logs)
			}
		})
	}
}

// TestStdioDrainIsBounded: a call that does not finish within the grace period is cancelled and
// the server returns anyway.
func TestStdioDrainIsBounded(t *testing.T) {
	fake, apiURL := startFake(t)
	hold := make(chan struct{}) // never closed: GitHub never answers
	fake.FailNext(githubfake.Fault{Body: aliceJSON, Hold: hold})
	s := startStdio(t, func(stdin io.Reader, stdout, stderr io.Writer) error {
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		opts := mcpbackend.Options{GitHubAPIURL: apiURL, EnvToken: githubfake.AliceToken, AllowEnvToken: true, Logger: logger}
		return runStdio(context.Background(), opts, stdin, stdout, logger, time.Millisecond)
	})
	s.handshake(fake)
	s.in.Close()
	if err := s.exit(); err != nil {
		t.Errorf("runStdio: %v", err)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "still in flight after the grace period are cancelled") {
		t.Errorf("log lacks the give-up line:\n%s", logs)
	}
}

// TestStdioGateCounting: the gate waits for requests only, matches ids in any spelling, and
// forgets a request the client cancels.
func TestStdioGateCounting(t *testing.T) {
	g := newStdioGate(context.Background(), strings.NewReader(""), io.Discard, time.Minute, slog.New(slog.DiscardHandler))
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":"a","method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":3,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":4,"method":"subscriptions/listen"}`, // lasts the whole session: not waited for
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,   // no id: nothing to wait for
		`{"jsonrpc":"2.0","id":9,"result":{}}`,                     // the client's answer to a server request
		`[{"jsonrpc":"2.0","id":5,"method":"ping"}]`,               // a batch: mcp-go answers it before reading on
		`not json`,
	} {
		g.track([]byte(line + "\n"))
	}
	g.track([]byte(`{"jsonrpc":"2.0","id":6,"method":"ping"}`)) // no newline at EOF: mcp-go drops it
	pending := func() string {
		g.mu.Lock()
		defer g.mu.Unlock()
		keys := []string{}
		for k, n := range g.pending {
			keys = append(keys, fmt.Sprintf("%s×%d", k, n))
		}
		return strings.Join(keys, " ")
	}
	if got := len(g.pending); got != 3 {
		t.Fatalf("pending %s, want ids 1, \"a\" and 3", pending())
	}
	// Responses as mcp-go writes them, possibly split across writes; a notification is not one.
	for _, w := range []string{`{"jsonrpc":"2.0","id":1.0,"result":{}}` + "\n", `{"jsonrpc":"2.0","method":"notifications/message","params":{}}` + "\n",
		`{"jsonrpc":"2.0","id":3,"err`, `or":{"code":-1,"message":"x"}}` + "\n"} {
		if _, err := g.out.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	if p := pending(); p != `"a"×1` {
		t.Fatalf("pending %s, want only \"a\"", p)
	}
	g.track([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}` + "\n"))
	if p := pending(); p != "" {
		t.Fatalf("pending %s after the cancellation, want none", p)
	}
}

// TestStdioSubprocessPipedInput is issue 16 as reported: requests piped into the built program
// (printf ... | mcpbackend -transport stdio), so stdin closes right after the last one while its
// GitHub call is still running. The response must still come out, and the program exit 0.
func TestStdioSubprocessPipedInput(t *testing.T) {
	bin := binary(t)
	fake, apiURL := startFake(t)
	hold := make(chan struct{})
	fake.FailNext(githubfake.Fault{Body: aliceJSON, Hold: hold})
	cmd := exec.Command(bin, "-transport", "stdio", "-github-api-url", apiURL)
	cmd.Env = append(os.Environ(), "GITHUB_ACCESS_TOKEN="+githubfake.AliceToken)
	cmd.Stdin = strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}` + "\n" +
			`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_user_info","arguments":{}}}` + "\n")
	var stdout, stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitFor(t, "the drain", func() bool {
		return strings.Contains(stderr.String(), "stdin closed: letting the calls in flight finish")
	})
	close(hold)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"id":2`) || !strings.Contains(lines[1], "GitHub user alice") ||
		strings.Contains(lines[1], `"isError":true`) {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if s := stderr.String(); strings.Contains(s, "github call failed") || strings.Contains(s, "level=ERROR") {
		t.Errorf("log:\n%s", s)
	}
}
