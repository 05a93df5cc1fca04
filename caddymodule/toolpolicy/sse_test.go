package toolpolicy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const (
	ssePriming     = "id: ev-0\r\ndata: \r\n\r\n"
	sseKeepAlive   = ": keep-alive\r\n"
	sseListChanged = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n\r\n"
	sseProgress    = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\r\ndata: \"params\":{\"progressToken\":1,\"progress\":1}}\r\n\r\n"
	sseList        = "id: ev-1\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"rm_rf\"},\r\n" +
		"data: {\"name\":\"echo\"}],\"nextCursor\":\"n2\"}}\r\nretry: 1000\r\n\r\n"
	sseListWant = "id: ev-1\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"}],\"nextCursor\":\"n2\"}}\n" +
		"retry: 1000\r\n\r\n"
	sseAfter = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"rm_rf\"}]}}\n\n"
)

// sseFilter is the filter of a single tools/list request under listPolicy.
func sseFilter(t testing.TB, maxResponse int64) *ResponseFilter {
	p := listPolicy(t)
	p.maxResponse = maxResponse
	f := p.ResponseFilter(mustIdentity(t, p, `{}`), mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if f == nil {
		t.Fatal("no filter")
	}
	return f
}

func TestSSERewriteSplitWrites(t *testing.T) {
	in := ssePriming + sseKeepAlive + sseListChanged + sseProgress + sseList + sseAfter
	// After the list result nothing is parsed any more: sseAfter, which no
	// conformant server sends, goes through as it came.
	want := ssePriming + sseKeepAlive + sseListChanged + sseProgress + sseListWant + sseAfter
	for size := 1; size <= len(in); size++ {
		var out bytes.Buffer
		flushes := 0
		w := sseFilter(t, DefaultMaxResponseBytes).SSE(&out, func() { flushes++ })
		for i := 0; i < len(in); i += size {
			chunk := in[i:min(i+size, len(in))]
			n, err := w.Write([]byte(chunk))
			if err != nil || n != len(chunk) {
				t.Fatalf("size %d: Write = %d, %v", size, n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("size %d: got\n%q\nwant\n%q", size, out.String(), want)
		}
		if flushes < 5 {
			t.Errorf("size %d: %d flushes for 5 events and a comment", size, flushes)
		}
	}
}

func TestSSEPassesEventsAsTheyEnd(t *testing.T) {
	var out bytes.Buffer
	w := sseFilter(t, DefaultMaxResponseBytes).SSE(&out, nil)
	// The notification reaches the client before the list result exists.
	if _, err := w.Write([]byte(sseKeepAlive + sseListChanged + "id: ev-1\r\ndata: {\"jsonrpc\"")); err != nil {
		t.Fatal(err)
	}
	if out.String() != sseKeepAlive+sseListChanged {
		t.Fatalf("written so far: %q", out.String())
	}
	// A half-sent list result is never passed on, not even at Close.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != sseKeepAlive+sseListChanged {
		t.Errorf("after Close: %q", out.String())
	}
}

func TestSSELineEndings(t *testing.T) {
	// LF only, and CR only (both legal in text/event-stream).
	for _, eol := range []string{"\n", "\r"} {
		in := strings.ReplaceAll(sseListChanged+sseList, "\r\n", eol)
		var out bytes.Buffer
		w := sseFilter(t, DefaultMaxResponseBytes).SSE(&out, nil)
		for i := 0; i < len(in); i++ { // byte by byte: a lone CR at a write's end
			if _, err := w.Write([]byte{in[i]}); err != nil {
				t.Fatal(err)
			}
		}
		got := out.String()
		if !strings.Contains(got, `"tools":[{"name":"echo"}]`) || strings.Contains(got, "rm_rf") {
			t.Errorf("eol %q: %q", eol, got)
		}
		if !strings.HasPrefix(got, strings.ReplaceAll(sseListChanged, "\r\n", eol)) {
			t.Errorf("eol %q: the notification changed: %q", eol, got)
		}
	}
}

func TestSSEBatchResult(t *testing.T) {
	p := listPolicy(t)
	f := p.ResponseFilter(mustIdentity(t, p, `{}`), mustInspect(t, `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"prompts/list"}]`))
	var out bytes.Buffer
	w := f.SSE(&out, nil)
	in := "data: [{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"prompts\":[{\"name\":\"secret\"}]}}]\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"rm_x\"},{\"name\":\"a\"}]}}\n\n"
	if _, err := w.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	want := "data: [{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"prompts\":[]}}]\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
	if !w.through {
		t.Error("still parsing after both list results")
	}
}

func TestSSEFailsClosed(t *testing.T) {
	// An event larger than the bound while the list result is awaited.
	var out bytes.Buffer
	w := sseFilter(t, 64).SSE(&out, nil)
	_, err := w.Write([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"rm_rf\"},{\"name\":\"x\"}]}}\n\n"))
	if !errors.Is(err, ErrResponseTooLarge) || out.Len() != 0 {
		t.Errorf("err = %v, written %q", err, out.String())
	}
	if _, err := w.Write([]byte("\n")); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("a failed writer accepted more: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("Close = %v", err)
	}

	// A list result the filter cannot read.
	out.Reset()
	w = sseFilter(t, DefaultMaxResponseBytes).SSE(&out, nil)
	_, err = w.Write([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"rm_rf\"}\n\n"))
	if !errors.Is(err, ErrBadResponse) || out.Len() != 0 {
		t.Errorf("err = %v, written %q", err, out.String())
	}

	// The client's connection failing is reported as it is.
	boom := errors.New("broken pipe")
	w = sseFilter(t, DefaultMaxResponseBytes).SSE(failWriter{boom}, nil)
	if _, err := w.Write([]byte(sseListChanged)); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
