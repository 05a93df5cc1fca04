package toolpolicy

import (
	"bytes"
	"io"
)

// SSEWriter filters a text/event-stream response on its way to the client.
// It reads the stream line by line, holds each event only until its blank
// line, rewrites the data of an event that carries a watched list result
// (with the other fields of the event, id: event: retry:, kept in order),
// and writes every other event, and comment lines between events, as they
// were, calling flush after each. Once every awaited list result has gone
// by it stops parsing and passes bytes straight through.
//
// Events are limited to MaxResponseBytes while a list result is awaited;
// a longer one fails the stream (ErrResponseTooLarge), as does a list
// result that cannot be parsed (ErrBadResponse): the gateway must then end
// the response rather than pass the event on. An unfinished event at Close
// is dropped, as an SSE client would drop it.
//
// Not safe for concurrent use; Write is called by the proxy's copy loop.
type SSEWriter struct {
	f     *ResponseFilter
	w     io.Writer
	flush func()

	event   []byte // the raw lines of the current event
	line    []byte // a line not yet terminated
	afterCR bool   // the last byte seen was a CR: a following LF belongs to it
	through bool   // no list result awaited any more: pass everything
	err     error
}

// SSE returns a writer that filters an SSE stream into w. flush (may be
// nil) is called after each event or comment written, typically the
// ResponseWriter's Flush, so events are not held back.
func (f *ResponseFilter) SSE(w io.Writer, flush func()) *SSEWriter {
	if flush == nil {
		flush = func() {}
	}
	return &SSEWriter{f: f, w: w, flush: flush, through: f.pending == 0}
}

// Write consumes stream bytes. It returns len(p) and no error unless
// writing to the client fails or the stream must be cut (see SSEWriter).
func (s *SSEWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		if s.through && len(s.event) == 0 && len(s.line) == 0 && !s.afterCR {
			if _, err := s.w.Write(p); err != nil {
				s.err = err
				return 0, err
			}
			s.flush()
			return n, nil
		}
		if s.afterCR {
			s.afterCR = false
			if p[0] == '\n' {
				// The LF of a CRLF split across writes: part of the line
				// already ended; keep it with the bytes of its event.
				if err := s.appendTerminator('\n'); err != nil {
					return 0, err
				}
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			if err := s.grow(len(p)); err != nil {
				return 0, err
			}
			s.line = append(s.line, p...)
			break
		}
		if err := s.grow(i + 1); err != nil {
			return 0, err
		}
		s.line = append(s.line, p[:i+1]...)
		if p[i] == '\r' {
			if i+1 < len(p) && p[i+1] == '\n' {
				s.line = append(s.line, '\n')
				i++
			} else if i+1 == len(p) {
				s.afterCR = true
			}
		}
		p = p[i+1:]
		if err := s.endLine(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// grow checks that n more bytes keep the held event within bounds.
func (s *SSEWriter) grow(n int) error {
	if int64(len(s.event)+len(s.line)+n) > s.f.p.maxResponse && !s.through {
		s.err = ErrResponseTooLarge
		return s.err
	}
	return nil
}

// appendTerminator adds the LF of a split CRLF to what was last held, or
// writes it through when the line it ends was already written.
func (s *SSEWriter) appendTerminator(c byte) error {
	if len(s.event) > 0 {
		s.event = append(s.event, c)
		return nil
	}
	if _, err := s.w.Write([]byte{c}); err != nil {
		s.err = err
		return err
	}
	return nil
}

// endLine handles the complete line in s.line.
func (s *SSEWriter) endLine() error {
	line := s.line
	s.line = s.line[:0]
	content := bytes.TrimRight(line, "\r\n")
	switch {
	case len(content) == 0:
		// A blank line dispatches the event.
		s.event = append(s.event, line...)
		return s.dispatch()
	case len(s.event) == 0 && content[0] == ':':
		// A comment (keep-alive) between events: pass it at once.
		return s.write(line)
	}
	s.event = append(s.event, line...)
	return nil
}

// write sends bytes to the client and flushes.
func (s *SSEWriter) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		return err
	}
	s.flush()
	return nil
}

// dispatch writes the held event, rewritten if it carries a list result.
func (s *SSEWriter) dispatch() error {
	ev := s.event
	s.event = s.event[:0]
	if s.through {
		return s.write(ev)
	}
	data, hasData := eventData(ev)
	if c := (&scanner{b: data}).peek(); !hasData || (c != '{' && c != '[') {
		// No data, or not JSON-RPC (a priming event's empty data): no
		// list result in it.
		return s.write(ev)
	}
	out, changed, err := s.f.rewriteJSON(data)
	if err != nil {
		s.err = err
		return err
	}
	if s.f.pending == 0 {
		s.through = true
	}
	if !changed {
		return s.write(ev)
	}
	return s.write(replaceData(ev, out))
}

// lines calls fn for each line of ev with its terminator and its content.
func lines(ev []byte, fn func(line, content []byte)) {
	for len(ev) > 0 {
		i := bytes.IndexAny(ev, "\r\n")
		end := len(ev)
		if i >= 0 {
			end = i + 1
			if ev[i] == '\r' && i+1 < len(ev) && ev[i+1] == '\n' {
				end++
			}
		}
		fn(ev[:end], bytes.TrimRight(ev[:end], "\r\n"))
		ev = ev[end:]
	}
}

// field splits an SSE line into its field name and value (one leading
// space of the value removed), per the HTML event-stream format.
func field(content []byte) (name, value []byte) {
	i := bytes.IndexByte(content, ':')
	if i < 0 {
		return content, nil
	}
	value = content[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return content[:i], value
}

// eventData joins the data lines of an event with LF, as a client does.
func eventData(ev []byte) (data []byte, ok bool) {
	lines(ev, func(_, content []byte) {
		name, value := field(content)
		if string(name) != "data" {
			return
		}
		if ok {
			data = append(data, '\n')
		}
		ok = true
		data = append(data, value...)
	})
	return data, ok
}

// replaceData rebuilds an event with data as its data: the other lines kept
// in order, the data written where the first data line was, one data line
// per line of data.
func replaceData(ev, data []byte) []byte {
	out := make([]byte, 0, len(ev))
	done := false
	lines(ev, func(line, content []byte) {
		name, _ := field(content)
		if len(content) == 0 || string(name) != "data" {
			out = append(out, line...)
			return
		}
		if done {
			return
		}
		done = true
		for _, l := range bytes.Split(data, []byte("\n")) {
			out = append(out, "data: "...)
			out = append(out, l...)
			out = append(out, '\n')
		}
	})
	return out
}

// Close ends the stream: an unfinished event is dropped. It does not close
// the underlying writer.
func (s *SSEWriter) Close() error {
	s.event, s.line = nil, nil
	return s.err
}
