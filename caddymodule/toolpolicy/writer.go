package toolpolicy

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
)

// FilterWriter is an http.ResponseWriter to hand the backend (or the
// reverse proxy) in place of the client's, for a request that has a
// ResponseFilter. It routes a 200 answer through the filter: an SSE stream
// (text/event-stream) event by event through SSEWriter, any other body
// (application/json, or a mislabelled one) whole through Rewrite when
// Finish is called. Other statuses pass untouched.
//
// The filter cannot read compressed bodies: the gateway must remove
// Accept-Encoding from the request it forwards. A 200 JSON or SSE answer
// that still comes with a Content-Encoding is refused with 502.
type FilterWriter struct {
	rw     http.ResponseWriter
	f      *ResponseFilter
	status int
	sse    *SSEWriter
	buf    *bytes.Buffer // JSON mode
	err    error         // the answer cannot be passed on
}

// Wrap returns a FilterWriter writing to w. Call Finish once the backend is
// done.
func (f *ResponseFilter) Wrap(w http.ResponseWriter) *FilterWriter {
	return &FilterWriter{rw: w, f: f}
}

// Header returns the header map of the client's response.
func (fw *FilterWriter) Header() http.Header { return fw.rw.Header() }

// WriteHeader chooses how the answer travels, from its status and
// Content-Type.
func (fw *FilterWriter) WriteHeader(code int) {
	if fw.status != 0 {
		return
	}
	fw.status = code
	h := fw.rw.Header()
	if code != http.StatusOK {
		fw.rw.WriteHeader(code)
		return
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if ce := h.Get("Content-Encoding"); ce != "" && ce != "identity" {
		fw.err = ErrBadResponse
		fw.fail()
		return
	}
	if mt != "text/event-stream" {
		// application/json, or a type a list answer should not have: read
		// as JSON all the same, so that a mislabelled list is filtered or
		// refused, never passed on as it is.
		fw.buf = &bytes.Buffer{}
		return
	}
	h.Del("Content-Length")
	fw.rw.WriteHeader(code)
	rc := http.NewResponseController(fw.rw)
	fw.sse = fw.f.SSE(fw.rw, func() { _ = rc.Flush() })
}

// fail answers 502 in place of an answer that cannot be filtered.
func (fw *FilterWriter) fail() {
	h := fw.rw.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Type"} {
		h.Del(k)
	}
	http.Error(fw.rw, "the backend's answer could not be filtered", http.StatusBadGateway)
}

// Write sends the answer's bytes on, through the filter when one applies.
// After an error, the writes fail with it: the proxy should stop copying.
func (fw *FilterWriter) Write(p []byte) (int, error) {
	if fw.status == 0 {
		fw.WriteHeader(http.StatusOK)
	}
	switch {
	case fw.err != nil:
		return 0, fw.err
	case fw.sse != nil:
		n, err := fw.sse.Write(p)
		if err != nil {
			fw.err = err
		}
		return n, err
	case fw.buf != nil:
		if int64(fw.buf.Len()+len(p)) > fw.f.p.maxResponse {
			fw.err = ErrResponseTooLarge
			fw.buf = nil
			fw.fail()
			return 0, fw.err
		}
		return fw.buf.Write(p)
	}
	return fw.rw.Write(p)
}

// Flush passes a flush on for an answer that is not filtered; the
// SSEWriter flushes after each event by itself, and a JSON body is held
// until Finish.
func (fw *FilterWriter) Flush() {
	if fw.sse == nil && fw.buf == nil && fw.err == nil {
		_ = http.NewResponseController(fw.rw).Flush()
	}
}

// Unwrap returns the client's ResponseWriter, for http.ResponseController.
func (fw *FilterWriter) Unwrap() http.ResponseWriter { return fw.rw }

// Finish completes the answer: it writes the filtered JSON body (with its
// new Content-Length) or drops an unfinished SSE event. It returns the
// error that made the answer unusable, if any: a JSON body that could not
// be filtered has then been answered with 502; an SSE stream has been cut
// where the failing event began (the gateway should log the error and end
// the response).
func (fw *FilterWriter) Finish() error {
	switch {
	case fw.sse != nil:
		if err := fw.sse.Close(); err != nil {
			return err
		}
		return fw.err
	case fw.buf != nil && fw.err == nil:
		out, err := fw.f.Rewrite(fw.buf.Bytes())
		if err != nil {
			fw.err = err
			fw.fail()
			return err
		}
		fw.rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
		fw.rw.WriteHeader(http.StatusOK)
		_, err = fw.rw.Write(out)
		return err
	}
	return fw.err
}

// MaxResponseBytes is the bound on a list response held for filtering
// (Config.MaxResponseBytes or its default).
func (p *Policy) MaxResponseBytes() int64 { return p.maxResponse }
