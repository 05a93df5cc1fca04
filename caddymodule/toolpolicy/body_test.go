package toolpolicy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	b, err := ReadBody(strings.NewReader(toolCall("echo")), 0)
	if err != nil || string(b) != toolCall("echo") {
		t.Fatalf("ReadBody = %q, %v", b, err)
	}
	exact := strings.Repeat("x", 100)
	if b, err := ReadBody(strings.NewReader(exact), 100); err != nil || len(b) != 100 {
		t.Fatalf("a body of exactly the limit: %d bytes, %v", len(b), err)
	}
	// A huge body: refused after reading limit+1 bytes, not all of it.
	huge := &countingReader{r: io.LimitReader(zeros{}, 64<<20)}
	_, err = ReadBody(huge, DefaultMaxBodyBytes)
	var re *RequestError
	if !errors.As(err, &re) || !errors.Is(err, ErrBodyTooLarge) || re.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("err = %v", err)
	}
	if huge.n > DefaultMaxBodyBytes+64<<10 {
		t.Errorf("read %d bytes of a huge body", huge.n)
	}
	if !strings.Contains(string(re.ErrorBody()), `"id":null`) {
		t.Errorf("error body %s", re.ErrorBody())
	}
	boom := errors.New("connection reset")
	if _, err := ReadBody(io.MultiReader(strings.NewReader("{"), errReader{boom}), 0); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadRequestBody(t *testing.T) {
	body := toolCall("echo")
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	b, err := ReadRequestBody(r, 0)
	if err != nil || string(b) != body {
		t.Fatalf("ReadRequestBody = %q, %v", b, err)
	}
	again, _ := io.ReadAll(r.Body)
	if string(again) != body || r.ContentLength != int64(len(body)) {
		t.Errorf("the backend would get %q (Content-Length %d)", again, r.ContentLength)
	}

	// Refused by its Content-Length, before a byte is read.
	cr := &countingReader{r: strings.NewReader(strings.Repeat("x", 200))}
	r = httptest.NewRequest(http.MethodPost, "/mcp", cr)
	r.ContentLength = 200
	_, err = ReadRequestBody(r, 100)
	var re *RequestError
	if !errors.As(err, &re) || re.Status != http.StatusRequestEntityTooLarge || cr.n != 0 {
		t.Errorf("err = %v after reading %d bytes", err, cr.n)
	}
	// No Content-Length (chunked): bounded by reading.
	r = httptest.NewRequest(http.MethodPost, "/mcp", io.MultiReader(strings.NewReader(strings.Repeat("x", 200))))
	r.ContentLength = -1
	if _, err := ReadRequestBody(r, 100); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("chunked: err = %v", err)
	}
	// A body shorter than its Content-Length.
	r = httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	r.ContentLength = 10
	if _, err := ReadRequestBody(r, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: err = %v", err)
	}
	// A body longer than its Content-Length.
	r = httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}{}"))
	r.ContentLength = 2
	if _, err := ReadRequestBody(r, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("long body: err = %v", err)
	}
	// However the reader hands out its bytes: one at a time, with io.EOF
	// on the last one (as net/http's body does), or an error of its own.
	for name, rd := range map[string]io.Reader{
		"one byte at a time": iotest.OneByteReader(strings.NewReader(body)),
		"EOF with the data":  iotest.DataErrReader(strings.NewReader(body)),
	} {
		r = httptest.NewRequest(http.MethodPost, "/mcp", rd)
		r.ContentLength = int64(len(body))
		if b, err := ReadRequestBody(r, 0); err != nil || string(b) != body || cap(b) != len(body) {
			t.Errorf("%s: %q (cap %d), %v", name, b, cap(b), err)
		}
	}
	// One that hands out the body and then nothing, forever, without EOF.
	r = httptest.NewRequest(http.MethodPost, "/mcp", &stuckReader{r: strings.NewReader(body)})
	r.ContentLength = int64(len(body))
	if _, err := ReadRequestBody(r, 0); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("a reader that returns nothing: err = %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/mcp", iotest.TimeoutReader(strings.NewReader(body)))
	r.ContentLength = int64(len(body)) + 1
	if _, err := ReadRequestBody(r, 0); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("a failing read: err = %v", err)
	}
}

// TestReadRequestBodyInMemoryType: the body handed on must be exactly
// io.NopCloser around a *bytes.Reader, the pair net/http's Transport knows
// to be in memory: with any other type it flushes the request headers on
// their own, an extra write (see ReadRequestBody).
func TestReadRequestBodyInMemoryType(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0"}`))
	if _, err := ReadRequestBody(r, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := reflect.TypeOf(r.Body), reflect.TypeOf(io.NopCloser(bytes.NewReader(nil))); got != want {
		t.Errorf("body type %v, want %v", got, want)
	}
}

// stuckReader returns r's bytes, then (0, nil) for ever.
type stuckReader struct{ r io.Reader }

func (s *stuckReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		return n, nil
	}
	return n, err
}
