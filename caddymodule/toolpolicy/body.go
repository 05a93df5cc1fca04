package toolpolicy

import (
	"bytes"
	"io"
	"net/http"
)

// ReadBody reads a request body of at most limit bytes (0: the default,
// DefaultMaxBodyBytes) and returns its bytes, which the gateway must then
// hand on to the backend unchanged. A longer body yields a *RequestError
// wrapping ErrBodyTooLarge (413) after reading at most limit+1 bytes; the
// gateway should also refuse a Content-Length above the limit before
// reading. Errors of r are returned as they are.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

// ReadRequestBody is ReadBody for an HTTP request: a Content-Length above
// limit (0: the default) is refused before anything is read, a declared
// length is read into one allocation, and r.Body is replaced by a reader of
// the same bytes (r.ContentLength set to match) so the backend receives
// exactly what was inspected.
func ReadRequestBody(r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var b []byte
	var err error
	if r.ContentLength > 0 {
		b, err = readDeclared(r.Body, r.ContentLength)
	} else {
		b, err = ReadBody(r.Body, limit)
	}
	if err != nil {
		return nil, err
	}
	// Exactly io.NopCloser around a *bytes.Reader, although a type of our
	// own would be one allocation instead of two: net/http's Transport
	// recognises this pair as an in-memory body and writes the request's
	// headers and body together, where any other reader makes it flush the
	// headers first (an extra write and TCP segment). Caddy 2.11's
	// reverse_proxy wraps the body in its own types before the Transport
	// sees it, so there it makes no difference today; a handler that hands
	// the request to a Transport as it is would pay for it.
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return b, nil
}

// readDeclared reads a body of a declared length n into one allocation of
// n+1 bytes: the spare byte shows a body that goes on past n (not one from
// net/http's server, which stops there itself) without a second buffer.
// net/http's body hands back its last bytes together with io.EOF, so one
// Read usually does.
func readDeclared(r io.Reader, n int64) ([]byte, error) {
	b := make([]byte, n+1)
	got, empty := 0, 0
	for {
		m, err := r.Read(b[got:])
		got += m
		if m == 0 && err == nil {
			// A reader that keeps returning nothing must not hold the
			// request forever (bufio gives up the same way).
			if empty++; empty == maxEmptyReads {
				return nil, io.ErrNoProgress
			}
			continue
		}
		empty = 0
		switch {
		case int64(got) > n:
			return nil, io.ErrUnexpectedEOF // the body must end where it said it would
		case err == io.EOF && int64(got) == n:
			return b[:n:n], nil
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
	}
}

// maxEmptyReads is how many reads in a row may return nothing and no
// error before readDeclared gives up, as bufio's Reader does.
const maxEmptyReads = 100
