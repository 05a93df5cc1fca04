package toolpolicy

import "errors"

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
	lists   []string // list methods of the request that the policy filters
	pending int      // list results still expected
}

// ResponseFilter returns a filter for the responses to req, or nil when req
// has no list call the policy filters (no rule names that list's items and
// the default is allow): then the response needs no rewriting.
func (p *Policy) ResponseFilter(id *Identity, req *Request) *ResponseFilter {
	var f *ResponseFilter
	for _, c := range req.Calls {
		if !p.filters(c.Method) {
			continue
		}
		if f == nil {
			f = &ResponseFilter{p: p, id: id}
		}
		if c.ID != nil {
			f.pending++
		}
		if !contains(f.lists, c.Method) {
			f.lists = append(f.lists, c.Method)
		}
	}
	return f
}

// filters reports whether the policy filters the results of list method m.
func (p *Policy) filters(m string) bool {
	item := knownMethods[m].list
	if item == "" {
		return false
	}
	return p.defaultDeny || p.methods[item] != nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
	// Find the watched items array in result.
	rs := &scanner{b: msg[:resEnd], i: resStart}
	arrStart, arrEnd := -1, -1
	var list string
	err = rs.object(func(key []byte, plain bool) error {
		for _, l := range f.lists {
			if keyIs(key, plain, listKinds[l].items) {
				if arrStart >= 0 {
					return errSyntax // two item lists: which one would the client read?
				}
				list = l
				arrStart = rs.i
				err := rs.skip()
				arrEnd = rs.i
				return err
			}
		}
		return rs.skip()
	})
	if err != nil {
		return nil, false, ErrBadResponse
	}
	if arrStart < 0 || msg[arrStart] != '[' {
		return msg, false, nil
	}
	if f.pending > 0 {
		f.pending--
	}
	kept, err := f.filterItems(list, msg[arrStart:arrEnd])
	if err != nil {
		return nil, false, err
	}
	if kept == nil {
		return msg, false, nil
	}
	out = make([]byte, 0, len(msg)-(arrEnd-arrStart)+len(kept))
	out = append(out, msg[:arrStart]...)
	out = append(out, kept...)
	return append(out, msg[arrEnd:]...), true, nil
}

// filterItems returns the items array with the refused items removed, or
// nil when every item is kept.
func (f *ResponseFilter) filterItems(list string, arr []byte) ([]byte, error) {
	kind := listKinds[list]
	item := knownMethods[list].list
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
		if !f.p.Allows(f.id, item, name) {
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
