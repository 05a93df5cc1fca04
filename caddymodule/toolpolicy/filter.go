package toolpolicy

import (
	"errors"
	"slices"
)

// Errors of list filtering. The gateway must not pass the unfiltered
// response on after either: it could name tools the user may not call.
// Answer 502 instead (nothing has been written yet for a JSON body; for an
// SSE stream, end it).
var (
	// ErrResponseTooLarge: a list response (or one SSE event while a list
	// result is awaited) exceeds MaxResponseBytes.
	ErrResponseTooLarge = errors.New("toolpolicy: list response too large to filter")
	// ErrBadResponse: the backend's answer to a list request is not
	// JSON-RPC the filter can read.
	ErrBadResponse = errors.New("toolpolicy: list response is not valid JSON-RPC")
)

// ResponseFilter removes from list results (tools/list, prompts/list,
// resources/list) the items the token may not use: a tool whose tools/call
// the policy refuses, a prompt whose prompts/get it refuses, a resource
// whose resources/read it refuses. Everything else in the response is kept
// byte for byte: nextCursor, _meta, the other members of each kept item,
// other messages. Use one per request; it is not safe for concurrent use.
type ResponseFilter struct {
	p       *Policy
	id      *Identity
	kinds   []listItems // the kinds of items to filter in results
	pending int         // list results still expected
}

// ResponseFilter returns a filter for the responses to req, or nil when req
// has no call whose result lists items the policy restricts (no rule names
// that kind of item and the default is allow): then the response needs no
// rewriting. The list calls are tools/list, prompts/list, resources/list,
// and server/discover, which may list all three.
func (p *Policy) ResponseFilter(id *Identity, req *Request) *ResponseFilter {
	var f *ResponseFilter
	for _, c := range req.Calls {
		lists := false
		for _, k := range listKinds[c.Method] {
			if !p.filtersItems(k) {
				continue
			}
			lists = true
			if f == nil {
				f = &ResponseFilter{p: p, id: id}
			}
			if !slices.Contains(f.kinds, k) {
				f.kinds = append(f.kinds, k)
			}
		}
		if lists && c.ID != nil {
			f.pending++
		}
	}
	return f
}

// filtersItems reports whether the policy hides any items of kind k: a
// rule names its method, or the default is deny.
func (p *Policy) filtersItems(k listItems) bool {
	return p.defaultDeny || p.methods[k.method] != nil
}

// Rewrite filters a plain JSON response body (Content-Type
// application/json): one JSON-RPC response or an array of them. It returns
// body itself when nothing was removed. The body's length changes when
// something was, so the gateway must drop Content-Length.
func (f *ResponseFilter) Rewrite(body []byte) ([]byte, error) {
	if int64(len(body)) > f.p.maxResponse {
		return nil, ErrResponseTooLarge
	}
	out, _, err := f.rewriteJSON(body)
	return out, err
}

// rewriteJSON filters one JSON-RPC message or an array of them.
func (f *ResponseFilter) rewriteJSON(body []byte) (result []byte, changed bool, err error) {
	s := &scanner{b: body}
	switch s.peek() {
	case '{':
		return f.rewriteMessage(body)
	case '[':
		var out []byte // nil until an element changes
		last := 0      // end of the part of body already copied to out
		err := s.array(func() error {
			start := s.i
			if err := s.skip(); err != nil {
				return err
			}
			el := body[start:s.i]
			if el[0] != '{' {
				return nil
			}
			nel, changed, err := f.rewriteMessage(el)
			if err != nil {
				return err
			}
			if changed {
				out = append(append(out, body[last:start]...), nel...)
				last = s.i
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, ErrBadResponse) {
				return nil, false, err
			}
			return nil, false, ErrBadResponse
		}
		if s.end() != nil {
			return nil, false, ErrBadResponse
		}
		if out == nil {
			return body, false, nil
		}
		return append(out, body[last:]...), true, nil
	}
	return nil, false, ErrBadResponse
}

// rewriteMessage filters one JSON-RPC message. A message that is not a
// response, or whose result holds no watched list, is returned as is;
// changed reports whether items were removed.
func (f *ResponseFilter) rewriteMessage(msg []byte) (out []byte, changed bool, err error) {
	s := &scanner{b: msg}
	resStart, resEnd := -1, -1
	isRequest := false
	err = s.object(func(key []byte, plain bool) error {
		switch {
		case keyIs(key, plain, "result"):
			if resStart >= 0 {
				return errSyntax // given twice
			}
			resStart = s.i
			err := s.skip()
			resEnd = s.i
			return err
		case keyIs(key, plain, "method"):
			isRequest = true
		}
		return s.skip()
	})
	if err != nil || s.end() != nil {
		return nil, false, ErrBadResponse
	}
	if isRequest || resStart < 0 || msg[resStart] != '{' {
		return msg, false, nil
	}
	// Find the watched item arrays in result.
	type span struct {
		start, end int
		kind       listItems
	}
	var spans []span
	rs := &scanner{b: msg[:resEnd], i: resStart}
	err = rs.object(func(key []byte, plain bool) error {
		for _, k := range f.kinds {
			if !keyIs(key, plain, k.items) {
				continue
			}
			for _, sp := range spans {
				if sp.kind == k {
					return errSyntax // given twice: which one would the client read?
				}
			}
			start := rs.i
			err := rs.skip()
			if err == nil && msg[start] == '[' {
				spans = append(spans, span{start, rs.i, k})
			}
			return err
		}
		return rs.skip()
	})
	if err != nil {
		return nil, false, ErrBadResponse
	}
	if len(spans) == 0 {
		return msg, false, nil
	}
	if f.pending > 0 {
		f.pending--
	}
	last := 0
	for _, sp := range spans {
		kept, err := f.filterItems(sp.kind, msg[sp.start:sp.end])
		if err != nil {
			return nil, false, err
		}
		if kept == nil {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(msg))
		}
		out = append(append(out, msg[last:sp.start]...), kept...)
		last = sp.end
	}
	if out == nil {
		return msg, false, nil
	}
	return append(out, msg[last:]...), true, nil
}

// filterItems returns the items array with the refused items removed, or
// nil when every item is kept.
func (f *ResponseFilter) filterItems(kind listItems, arr []byte) ([]byte, error) {
	s := &scanner{b: arr}
	var out []byte
	dropped := false
	n := 0
	err := s.array(func() error {
		start := s.i
		name := ""
		if s.peek() == '{' {
			var nameRaw []byte
			err := s.object(func(key []byte, plain bool) error {
				if keyIs(key, plain, kind.key) {
					if nameRaw != nil {
						return errSyntax
					}
					v, err := s.value()
					nameRaw = v
					return err
				}
				return s.skip()
			})
			if err != nil {
				return err
			}
			if nameRaw != nil {
				name, _ = stringMember(nameRaw) // not a string: "" (only "*" rules or the default decide)
			}
		} else if err := s.skip(); err != nil {
			return err
		}
		allowed := false
		if kind.template {
			allowed = f.p.templateVisible(f.id, name)
		} else {
			allowed = f.p.Allows(f.id, kind.method, name)
		}
		if !allowed {
			dropped = true
			return nil
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, arr[start:s.i]...)
		return nil
	})
	if err != nil {
		return nil, ErrBadResponse
	}
	if !dropped {
		return nil, nil
	}
	return append(append([]byte{'['}, out...), ']'), nil
}
