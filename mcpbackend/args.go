package mcpbackend

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// This file parses and validates tool arguments. A bad argument is an *argError, whose text
// becomes the tool error the model sees; nothing that fails here reaches GitHub.

// argError is a bad argument; its text is the tool error.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

func badArg(format string, a ...any) error { return &argError{fmt.Sprintf(format, a...)} }

type args map[string]any

func (a args) str(name string) (string, error) {
	v, ok := a[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badArg("%s must be a string", name)
	}
	return s, nil
}

func (a args) integer(name string, def, lo, hi int) (int, error) {
	v, ok := a[name]
	if !ok || v == nil {
		return def, nil
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0, badArg("%s must be an integer", name)
		}
		f = x
	default:
		return 0, badArg("%s must be an integer", name)
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, badArg("%s must be an integer", name)
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, badArg("%s must be between %d and %d, got %v", name, lo, hi, f)
	}
	return int(f), nil
}

func (a args) enum(name, def string, allowed ...string) (string, error) {
	s, err := a.str(name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return def, nil
	}
	for _, x := range allowed {
		if s == x {
			return s, nil
		}
	}
	return "", badArg("%s must be one of %s, got %q", name, strings.Join(allowed, ", "), truncate(s, 40))
}

// name checks an owner or repository name: GitHub allows letters, digits, '-', '_' and '.'.
// Anything that could change the request path ('/', '..', '%', '?', …) is rejected.
func (a args) name(field string) (string, error) {
	s, err := a.str(field)
	if err != nil {
		return "", err
	}
	switch {
	case s == "":
		return "", badArg("%s is required", field)
	case len(s) > 100:
		return "", badArg("%s is longer than 100 characters", field)
	case strings.Contains(s, "/"):
		return "", badArg("%s %q must be a single name without \"/\" (pass owner and repo separately)", field, truncate(s, 40))
	case strings.Contains(s, ".."):
		return "", badArg("%s %q must not contain \"..\"", field, truncate(s, 40))
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", badArg("%s %q may contain only letters, digits, '-', '_' and '.'", field, truncate(s, 40))
		}
	}
	return s, nil
}

func (a args) paging(maxPages int) (perPage, page, pages int, err error) {
	if perPage, err = a.integer("per_page", 30, 1, 100); err != nil {
		return
	}
	if page, err = a.integer("page", 1, 1, 100000); err != nil {
		return
	}
	pages, err = a.integer("pages", 1, 1, maxPages)
	return
}

func pagingQuery(q url.Values, perPage, page int) url.Values {
	q.Set("per_page", strconv.Itoa(perPage))
	q.Set("page", strconv.Itoa(page))
	return q
}

func ownerRepo(a args) (string, string, error) {
	owner, err := a.name("owner")
	if err != nil {
		return "", "", err
	}
	repo, err := a.name("repo")
	if err != nil {
		return "", "", err
	}
	return owner, repo, nil
}

// checkRepoPath accepts "" (the root) or slash-separated segments, none empty, "." or "..".
func checkRepoPath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 1000 {
		return badArg("path is longer than 1000 characters")
	}
	if strings.HasPrefix(p, "/") {
		return badArg("path %q must be relative to the repository root (no leading \"/\")", truncate(p, 60))
	}
	if strings.ContainsAny(p, "\\\x00\r\n") {
		return badArg("path %q contains a backslash or control character", truncate(p, 60))
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return badArg("path %q must not contain empty, \".\" or \"..\" segments", truncate(p, 60))
		}
	}
	return nil
}

// checkRef accepts what git allows in a ref name, roughly: no "..", spaces, control characters,
// or a leading "-".
func checkRef(r string) error {
	switch {
	case r == "":
		return nil
	case len(r) > 250:
		return badArg("ref is longer than 250 characters")
	case strings.Contains(r, ".."), strings.HasPrefix(r, "-"), strings.ContainsAny(r, " ~^:?*[\\\x7f"):
		return badArg("ref %q is not a valid branch, tag or commit name", truncate(r, 60))
	}
	for _, c := range r {
		if c < ' ' {
			return badArg("ref contains control characters")
		}
	}
	return nil
}
