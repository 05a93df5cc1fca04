package githubfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file serves the endpoints listed in the package comment: routing, the GitHub JSON shapes,
// and GitHub-style pagination with Link headers.

func (f *Fake) route(w http.ResponseWriter, r *http.Request, user *User) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "user":
		writeJSON(w, http.StatusOK, f.userJSON(user, true))
	case len(parts) == 2 && parts[0] == "user" && parts[1] == "repos":
		f.listUserRepos(w, r, user)
	case len(parts) == 2 && parts[0] == "search" && parts[1] == "repositories":
		f.searchRepos(w, r, user)
	case len(parts) == 3 && parts[0] == "repos":
		if repo := f.visibleRepo(user, parts[1], parts[2]); repo != nil {
			writeJSON(w, http.StatusOK, f.repoJSON(r, repo))
			return
		}
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
	case len(parts) == 4 && parts[0] == "repos" && parts[3] == "issues":
		f.listIssues(w, r, user, parts[1], parts[2])
	case len(parts) >= 4 && parts[0] == "repos" && parts[3] == "contents":
		f.contents(w, r, user, parts[1], parts[2], strings.Join(parts[4:], "/"))
	default:
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
	}
}

func (f *Fake) visibleRepo(user *User, owner, name string) *Repo {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rp := range f.repos {
		if strings.EqualFold(rp.Owner, owner) && strings.EqualFold(rp.Name, name) {
			if rp.Private && !strings.EqualFold(rp.Owner, user.Login) {
				return nil
			}
			return rp
		}
	}
	return nil
}

func (f *Fake) listUserRepos(w http.ResponseWriter, r *http.Request, user *User) {
	q := r.URL.Query()
	visibility := q.Get("visibility")
	if visibility == "" {
		visibility = "all"
	}
	if !slices.Contains([]string{"all", "public", "private"}, visibility) {
		writeJSON(w, http.StatusUnprocessableEntity, ghMessage("Validation Failed"))
		return
	}
	f.mu.Lock()
	var list []*Repo
	for _, rp := range f.repos {
		if !strings.EqualFold(rp.Owner, user.Login) {
			continue
		}
		if (visibility == "public" && rp.Private) || (visibility == "private" && !rp.Private) {
			continue
		}
		list = append(list, rp)
	}
	f.mu.Unlock()
	if q.Get("sort") == "full_name" {
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	}
	items := make([]any, len(list))
	for i, rp := range list {
		items[i] = f.repoJSON(r, rp)
	}
	page, ok := paginate(w, r, items)
	if ok {
		writeJSON(w, http.StatusOK, page)
	}
}

func (f *Fake) searchRepos(w http.ResponseWriter, r *http.Request, user *User) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"message": "Validation Failed",
			"errors":  []any{map[string]string{"resource": "Search", "field": "q", "code": "missing"}},
		})
		return
	}
	var terms []string
	for _, t := range strings.Fields(q) {
		if !strings.Contains(t, ":") { // qualifiers such as language:go are accepted and ignored
			terms = append(terms, strings.ToLower(t))
		}
	}
	f.mu.Lock()
	var list []*Repo
	for _, rp := range f.repos {
		if rp.Private && !strings.EqualFold(rp.Owner, user.Login) {
			continue
		}
		hay := strings.ToLower(rp.Owner + "/" + rp.Name + " " + rp.Description)
		match := true
		for _, t := range terms {
			if !strings.Contains(hay, t) {
				match = false
			}
		}
		if match {
			list = append(list, rp)
		}
	}
	f.mu.Unlock()
	if r.URL.Query().Get("sort") == "stars" {
		sort.SliceStable(list, func(i, j int) bool { return list[i].Stars > list[j].Stars })
	}
	items := make([]any, len(list))
	for i, rp := range list {
		items[i] = f.repoJSON(r, rp)
	}
	page, ok := paginate(w, r, items)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"total_count": len(list), "incomplete_results": false, "items": page})
	}
}

func (f *Fake) listIssues(w http.ResponseWriter, r *http.Request, user *User, owner, name string) {
	rp := f.visibleRepo(user, owner, name)
	if rp == nil {
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	base := baseURL(r)
	var items []any
	f.mu.Lock()
	for _, is := range rp.Issues {
		st := is.State
		if st == "" {
			st = "open"
		}
		if state != "all" && st != state {
			continue
		}
		ok := true
		for _, l := range want {
			if !slices.Contains(is.Labels, strings.TrimSpace(l)) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		labels := make([]any, len(is.Labels))
		for i, l := range is.Labels {
			labels[i] = map[string]any{"id": 9000 + i, "name": l, "color": "d73a4a", "default": false}
		}
		m := map[string]any{
			"id":         int64(rp.ID)*1000 + int64(is.Number),
			"number":     is.Number,
			"title":      is.Title,
			"body":       is.Body,
			"state":      st,
			"labels":     labels,
			"user":       map[string]any{"login": is.Author, "id": 1},
			"comments":   0,
			"created_at": "2026-01-02T03:04:05Z",
			"updated_at": "2026-01-03T03:04:05Z",
			"html_url":   fmt.Sprintf("https://github.com/%s/%s/issues/%d", rp.Owner, rp.Name, is.Number),
			"url":        fmt.Sprintf("%s/repos/%s/%s/issues/%d", base, rp.Owner, rp.Name, is.Number),
		}
		if is.PullRequest {
			m["pull_request"] = map[string]any{"url": fmt.Sprintf("%s/repos/%s/%s/pulls/%d", base, rp.Owner, rp.Name, is.Number)}
		}
		items = append(items, m)
	}
	f.mu.Unlock()
	if items == nil {
		items = []any{}
	}
	page, ok := paginate(w, r, items)
	if ok {
		writeJSON(w, http.StatusOK, page)
	}
}

func (f *Fake) contents(w http.ResponseWriter, r *http.Request, user *User, owner, name, path string) {
	rp := f.visibleRepo(user, owner, name)
	if rp == nil {
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
		return
	}
	if ref := r.URL.Query().Get("ref"); ref != "" && ref != rp.DefaultBranch {
		writeJSON(w, http.StatusNotFound, ghMessage("No commit found for the ref "+ref))
		return
	}
	path = strings.Trim(path, "/")
	base := baseURL(r)
	f.mu.Lock()
	content, isFile := rp.Files[path]
	type entry struct {
		name, path, typ string
		size            int
	}
	seen := map[string]entry{}
	if !isFile {
		prefix := path + "/"
		if path == "" {
			prefix = ""
		}
		for p, c := range rp.Files {
			if !strings.HasPrefix(p, prefix) {
				continue
			}
			rest := strings.TrimPrefix(p, prefix)
			if i := strings.Index(rest, "/"); i >= 0 {
				seen[rest[:i]] = entry{name: rest[:i], path: prefix + rest[:i], typ: "dir"}
			} else {
				seen[rest] = entry{name: rest, path: p, typ: "file", size: len(c)}
			}
		}
	}
	f.mu.Unlock()
	if isFile {
		enc := base64.StdEncoding.EncodeToString([]byte(content))
		var b strings.Builder // GitHub wraps base64 content at 60 characters
		for len(enc) > 60 {
			b.WriteString(enc[:60] + "\n")
			enc = enc[60:]
		}
		b.WriteString(enc + "\n")
		writeJSON(w, http.StatusOK, map[string]any{
			"type": "file", "encoding": "base64", "size": len(content), "name": lastSegment(path), "path": path,
			"content": b.String(), "sha": fmt.Sprintf("%040x", len(content)),
			"url":      fmt.Sprintf("%s/repos/%s/%s/contents/%s", base, rp.Owner, rp.Name, path),
			"html_url": fmt.Sprintf("https://github.com/%s/%s/blob/%s/%s", rp.Owner, rp.Name, rp.DefaultBranch, path),
		})
		return
	}
	if len(seen) == 0 {
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
		return
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]any, 0, len(names))
	for _, n := range names {
		e := seen[n]
		list = append(list, map[string]any{
			"type": e.typ, "name": e.name, "path": e.path, "size": e.size, "sha": fmt.Sprintf("%040x", e.size),
			"html_url": fmt.Sprintf("https://github.com/%s/%s/tree/%s/%s", rp.Owner, rp.Name, rp.DefaultBranch, e.path),
		})
	}
	writeJSON(w, http.StatusOK, list)
}

func (f *Fake) userJSON(u *User, private bool) map[string]any {
	f.mu.Lock()
	pub, priv := 0, 0
	for _, rp := range f.repos {
		if rp.Owner == u.Login {
			if rp.Private {
				priv++
			} else {
				pub++
			}
		}
	}
	f.mu.Unlock()
	m := map[string]any{
		"login": u.Login, "id": u.ID, "node_id": fmt.Sprintf("U_%d", u.ID), "type": "User",
		"name": u.Name, "email": nilIfEmpty(u.Email), "company": nil, "location": "Earth", "bio": nil,
		"html_url":     "https://github.com/" + u.Login,
		"avatar_url":   fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", u.ID),
		"public_repos": pub, "followers": 5, "following": 2,
		"created_at": "2020-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
	}
	if private {
		m["total_private_repos"] = priv
		m["owned_private_repos"] = priv
	}
	return m
}

func (f *Fake) repoJSON(r *http.Request, rp *Repo) map[string]any {
	f.mu.Lock()
	var owner *User
	for _, u := range f.users {
		if u.Login == rp.Owner {
			owner = u
		}
	}
	open := 0
	for _, is := range rp.Issues {
		if is.State == "" || is.State == "open" {
			open++
		}
	}
	f.mu.Unlock()
	var ownerID int64
	if owner != nil {
		ownerID = owner.ID
	}
	vis := "public"
	if rp.Private {
		vis = "private"
	}
	topics := rp.Topics
	if topics == nil {
		topics = []string{}
	}
	full := rp.Owner + "/" + rp.Name
	return map[string]any{
		"id": rp.ID, "node_id": fmt.Sprintf("R_%d", rp.ID), "name": rp.Name, "full_name": full,
		"private": rp.Private, "visibility": vis,
		"owner":       map[string]any{"login": rp.Owner, "id": ownerID, "type": "User"},
		"html_url":    "https://github.com/" + full,
		"description": nilIfEmpty(rp.Description), "fork": false,
		"url":      baseURL(r) + "/repos/" + full,
		"language": nilIfEmpty(rp.Language), "default_branch": rp.DefaultBranch,
		"stargazers_count": rp.Stars, "watchers_count": rp.Stars, "forks_count": rp.Forks,
		"open_issues_count": open, "topics": topics, "archived": false,
		"created_at": "2021-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "pushed_at": "2026-01-01T00:00:00Z",
	}
}

// paginate slices items by per_page/page and sets the Link header. It writes a 422 and returns
// false for a per_page GitHub would not clamp (non-numeric).
func paginate(w http.ResponseWriter, r *http.Request, items []any) ([]any, bool) {
	q := r.URL.Query()
	perPage, page := 30, 1
	if s := q.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, ghMessage("Validation Failed"))
			return nil, false
		}
		perPage = min(max(n, 1), 100)
	}
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, ghMessage("Validation Failed"))
			return nil, false
		}
		page = max(n, 1)
	}
	last := max((len(items)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		q2.Set("per_page", strconv.Itoa(perPage))
		q2.Set("page", strconv.Itoa(p))
		return fmt.Sprintf("<%s%s?%s>; rel=%q", baseURL(r), r.URL.EscapedPath(), q2.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := (page - 1) * perPage
	if start >= len(items) {
		return []any{}, true
	}
	return items[start:min(start+perPage, len(items))], true
}

func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return ""
	}
	return strings.TrimSpace(tok)
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func ghMessage(msg string) map[string]any {
	return map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func lastSegment(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}
