package mcpbackend

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file holds the tool results: the structured output types (their JSON schemas are the tools'
// output schemas), the conversion from GitHub's JSON, and the one-line texts beside them.

// pageSummary describes the pages a list result covers.
type pageSummary struct {
	Count    int `json:"count"`
	Page     int `json:"page"`
	PerPage  int `json:"per_page"`
	NextPage int `json:"next_page,omitempty"`
	LastPage int `json:"last_page,omitempty"`
}

// newPageSummary describes count items from page (perPage each) with the pagination GitHub reported.
func newPageSummary(count, page, perPage int, info pageInfo) pageSummary {
	return pageSummary{Count: count, Page: page, PerPage: perPage, NextPage: info.next, LastPage: info.last}
}

func (p pageSummary) text() string {
	if p.NextPage > 0 {
		return fmt.Sprintf(" (more from page %d)", p.NextPage)
	}
	return ""
}

type userOut struct {
	Login       string `json:"login"`
	ID          int64  `json:"id"`
	Type        string `json:"type,omitempty"`
	Name        string `json:"name,omitempty"`
	Email       string `json:"email,omitempty"`
	Company     string `json:"company,omitempty"`
	Location    string `json:"location,omitempty"`
	Bio         string `json:"bio,omitempty"`
	HTMLURL     string `json:"html_url,omitempty"`
	PublicRepos int    `json:"public_repos"`
	Followers   int    `json:"followers"`
	Following   int    `json:"following"`
	CreatedAt   string `json:"created_at,omitempty"`
}

type ghRepo struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility"`
	Description   *string  `json:"description"`
	HTMLURL       string   `json:"html_url"`
	DefaultBranch string   `json:"default_branch"`
	Language      *string  `json:"language"`
	Stars         int      `json:"stargazers_count"`
	Forks         int      `json:"forks_count"`
	OpenIssues    int      `json:"open_issues_count"`
	Topics        []string `json:"topics"`
	Archived      bool     `json:"archived"`
	Fork          bool     `json:"fork"`
	UpdatedAt     string   `json:"updated_at"`
	PushedAt      string   `json:"pushed_at"`
}

type repoOut struct {
	ID            int64    `json:"id"`
	FullName      string   `json:"full_name"`
	Owner         string   `json:"owner"`
	Name          string   `json:"name"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility,omitempty"`
	Description   string   `json:"description,omitempty"`
	HTMLURL       string   `json:"html_url,omitempty"`
	DefaultBranch string   `json:"default_branch,omitempty"`
	Language      string   `json:"language,omitempty"`
	Stars         int      `json:"stargazers_count"`
	Forks         int      `json:"forks_count"`
	OpenIssues    int      `json:"open_issues_count"`
	Topics        []string `json:"topics,omitempty"`
	Archived      bool     `json:"archived,omitempty"`
	Fork          bool     `json:"fork,omitempty"`
	UpdatedAt     string   `json:"updated_at,omitempty"`
	PushedAt      string   `json:"pushed_at,omitempty"`
}

func (r ghRepo) out() repoOut {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return repoOut{
		ID: r.ID, FullName: r.FullName, Owner: r.Owner.Login, Name: r.Name, Private: r.Private,
		Visibility: r.Visibility, Description: deref(r.Description), HTMLURL: r.HTMLURL,
		DefaultBranch: r.DefaultBranch, Language: deref(r.Language), Stars: r.Stars, Forks: r.Forks,
		OpenIssues: r.OpenIssues, Topics: r.Topics, Archived: r.Archived, Fork: r.Fork,
		UpdatedAt: r.UpdatedAt, PushedAt: r.PushedAt,
	}
}

type repoListOut struct {
	Repositories []repoOut `json:"repositories"`
	pageSummary
}

type searchOut struct {
	TotalCount        int       `json:"total_count"`
	IncompleteResults bool      `json:"incomplete_results"`
	Repositories      []repoOut `json:"repositories"`
	pageSummary
}

type issueOut struct {
	Number        int      `json:"number"`
	Title         string   `json:"title"`
	State         string   `json:"state"`
	Labels        []string `json:"labels"`
	Author        string   `json:"author,omitempty"`
	Comments      int      `json:"comments"`
	IsPullRequest bool     `json:"is_pull_request"`
	HTMLURL       string   `json:"html_url,omitempty"`
	CreatedAt     string   `json:"created_at,omitempty"`
	UpdatedAt     string   `json:"updated_at,omitempty"`
	Body          string   `json:"body,omitempty"`
}

type issueListOut struct {
	Repository string     `json:"repository"`
	Issues     []issueOut `json:"issues"`
	pageSummary
}

type fileOut struct {
	Type      string     `json:"type"` // file, dir, symlink, submodule
	Path      string     `json:"path"`
	Name      string     `json:"name,omitempty"`
	Size      int        `json:"size"`
	SHA       string     `json:"sha,omitempty"`
	HTMLURL   string     `json:"html_url,omitempty"`
	Encoding  string     `json:"encoding,omitempty"` // utf-8 or base64
	Content   string     `json:"content,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
	Target    string     `json:"target,omitempty"`
	Entries   []entryOut `json:"entries,omitempty"`
}

type entryOut struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
	Size int    `json:"size"`
}

func (b *backend) fileResult(raw json.RawMessage, path string) (fileOut, error) {
	malformed := func(what string) error {
		return &githubError{kind: errMalformed, status: 200, cause: errors.New(what)}
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var list []entryOut
		if err := json.Unmarshal(raw, &list); err != nil {
			return fileOut{}, malformed("expected a directory listing")
		}
		if list == nil {
			list = []entryOut{}
		}
		return fileOut{Type: "dir", Path: path, Size: len(list), Entries: list}, nil
	}
	var f struct {
		Type     string `json:"type"`
		Encoding string `json:"encoding"`
		Size     int    `json:"size"`
		Name     string `json:"name"`
		Path     string `json:"path"`
		Content  string `json:"content"`
		SHA      string `json:"sha"`
		Target   string `json:"target"`
		HTMLURL  string `json:"html_url"`
	}
	if err := json.Unmarshal(raw, &f); err != nil || f.Type == "" {
		return fileOut{}, malformed("expected a file or directory")
	}
	out := fileOut{Type: f.Type, Path: f.Path, Name: f.Name, Size: f.Size, SHA: f.SHA, HTMLURL: f.HTMLURL, Target: f.Target}
	if f.Type != "file" {
		return out, nil // symlink or submodule: metadata only
	}
	if f.Encoding != "base64" {
		// GitHub sends encoding "none" and no content for files over 1 MB.
		return fileOut{}, badArg("the file %s is %d bytes, too large for GitHub's contents API; fetch it from %s instead",
			f.Path, f.Size, orNone(f.HTMLURL))
	}
	data, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, f.Content))
	if err != nil {
		return fileOut{}, malformed("file content is not valid base64")
	}
	if len(data) > b.opts.MaxFileBytes {
		data, out.Truncated = data[:b.opts.MaxFileBytes], true
	}
	if utf8.Valid(data) && !bytes.ContainsRune(data, 0) {
		out.Encoding, out.Content = "utf-8", string(data)
	} else if out.Truncated && utf8.Valid(trimPartialRune(data)) && !bytes.ContainsRune(data, 0) {
		out.Encoding, out.Content = "utf-8", string(trimPartialRune(data))
	} else {
		out.Encoding, out.Content = "base64", base64.StdEncoding.EncodeToString(data)
	}
	return out, nil
}

// trimPartialRune drops an incomplete UTF-8 sequence cut off at the end by truncation.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

func fileText(f fileOut, repo string) string {
	switch f.Type {
	case "dir":
		names := make([]string, 0, len(f.Entries))
		for _, e := range f.Entries {
			n := e.Name
			if e.Type == "dir" {
				n += "/"
			}
			names = append(names, n)
		}
		return fmt.Sprintf("Directory %s/%s: %d entries: %s", repo, f.Path, len(f.Entries), abbreviate(names, 50))
	case "file":
		head := fmt.Sprintf("File %s/%s (%d bytes", repo, f.Path, f.Size)
		if f.Truncated {
			head += ", truncated"
		}
		if f.Encoding == "base64" {
			return head + ", binary; base64 content in the structured result)"
		}
		return head + "):\n" + f.Content
	}
	return fmt.Sprintf("%s/%s is a %s %s", repo, f.Path, f.Type, f.Target)
}

// listText is the text beside a list result: head (e.g. "3 repositories"), where more can be
// found, and the first 20 items.
func listText(head string, p pageSummary, items []string) string {
	return head + p.text() + ": " + abbreviate(items, 20)
}

func abbreviate(items []string, n int) string {
	if len(items) == 0 {
		return "none"
	}
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", … and %d more", len(items)-n)
}

func orNone(s string) string {
	if s == "" {
		return "no description"
	}
	return s
}
