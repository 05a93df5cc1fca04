// Package docs holds only tests: they keep the Markdown documentation of the repository true to
// the software. troubleshooting.md's error table quotes messages and error codes that must occur
// in the Go sources; every relative link in README.md and docs/ must lead to an existing file
// and heading; README's layout must name every Go package directory.
package docs

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the checkout this package lives in.
const repoRoot = ".."

// fakeDirs are directories of test fakes: their strings do not show what the software says.
var fakeDirs = []string{
	filepath.Join("client", "internal", "oauthtest"),
	filepath.Join("client", "internal", "testbrowser"),
	filepath.Join("mcpbackend", "githubfake"),
	filepath.Join("internal", "testutil"),
	"docs",
}

// sourceFile is the string constants of one non-test Go file, with the format verbs of each
// replaced by wild, and adjacent constants joined by + folded into one string.
type sourceFile struct {
	path    string
	strings []string
}

// wild stands for a format verb (%s, %q, %v, %d, ...) of a source string: any text.
const wild = '\x00'

var verbRe = regexp.MustCompile(`%[-+# 0-9.*\[\]]*[a-zA-Z]`)

// goSources parses every non-test Go file of the repository outside fakeDirs.
func goSources(t *testing.T) []sourceFile {
	t.Helper()
	var files []sourceFile
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" || d.Name() == "node_modules" || d.Name() == "bin" {
				return filepath.SkipDir
			}
			for _, f := range fakeDirs {
				if rel == f {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		sf := sourceFile{path: rel}
		ast.Inspect(f, func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok {
				if s, ok := foldString(e); ok {
					sf.strings = append(sf.strings, verbRe.ReplaceAllLiteralString(strings.ReplaceAll(s, "%%", "%"), string(wild)))
				}
			}
			return true
		})
		files = append(files, sf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d Go files under %s", len(files), repoRoot)
	}
	return files
}

// foldString returns the value of a string literal or of a sum of string literals.
func foldString(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", false
		}
		v := constant.MakeFromLiteral(x.Value, x.Kind, 0)
		if v.Kind() != constant.String {
			return "", false
		}
		return constant.StringVal(v), true
	case *ast.ParenExpr:
		return foldString(x.X)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		l, ok1 := foldString(x.X)
		r, ok2 := foldString(x.Y)
		return l + r, ok1 && ok2
	}
	return "", false
}

// literalMatch reports where part occurs in some expansion of s (whose wild runes stand for
// any text) at or after byte offset from: the end offset in s, and how many of part's runes
// matched literal text of s rather than a wildcard. ok is false when part does not occur with
// at least half of it, and at least 4 runes, literal.
func literalMatch(part, s string, from int) (end int, ok bool) {
	p, src := []rune(part), []rune(s[from:])
	if len(p) == 0 {
		return from, true
	}
	// best[i][j]: the most literal runes over ways of matching p[:i] ending just before
	// src[j] (src[j-1] consumed or a wildcard at j still open); -1 if impossible.
	// A match may start at any j (inside a wildcard too) and end anywhere.
	const none = -1
	n, m := len(p), len(src)
	best := make([][]int, n+1)
	for i := range best {
		best[i] = make([]int, m+1)
		for j := range best[i] {
			best[i][j] = none
		}
	}
	for j := 0; j <= m; j++ {
		best[0][j] = 0
	}
	for i := 0; i <= n; i++ {
		for j := 0; j <= m; j++ {
			cur := best[i][j]
			if cur == none {
				continue
			}
			if j < m && src[j] == wild {
				// Skip the wildcard, or let it consume p[i].
				if cur > best[i][j+1] {
					best[i][j+1] = cur
				}
				if i < n && cur > best[i+1][j] {
					best[i+1][j] = cur
				}
				continue
			}
			if i < n && j < m && src[j] == p[i] && cur+1 > best[i+1][j+1] {
				best[i+1][j+1] = cur + 1
			}
		}
	}
	need := max(4, (countNonSpace(p)+1)/2)
	if n < 4 {
		need = n // a short code must match exactly
	}
	for j := 0; j <= m; j++ {
		if best[n][j] >= need {
			return from + len(string(src[:j])), true
		}
	}
	return 0, false
}

func countNonSpace(rs []rune) int {
	c := 0
	for _, r := range rs {
		if !unicode.IsSpace(r) {
			c++
		}
	}
	return c
}

// wildcardRe splits a documented message at its elisions.
var wildcardRe = regexp.MustCompile(`\s*(?:\.\.\.|…)\s*`)

// messageFound reports whether msg, with "..." or "…" standing for any text, occurs in one
// source string with its parts in order, or else in successive strings of one file.
func messageFound(files []sourceFile, msg string) bool {
	var parts []string
	for _, p := range wildcardRe.Split(msg, -1) {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return false
	}
	for _, f := range files {
		for _, s := range f.strings {
			from, ok := 0, true
			for _, p := range parts {
				if from, ok = literalMatch(p, s, from); !ok {
					break
				}
			}
			if ok {
				return true
			}
		}
	}
	if len(parts) == 1 {
		return false
	}
	// Nearby: the parts in order in successive strings of one file.
	for _, f := range files {
		next := 0
		for _, p := range parts {
			found := false
			for k := next; k < len(f.strings); k++ {
				if _, ok := literalMatch(p, f.strings[k], 0); ok {
					next, found = k+1, true
					break
				}
			}
			if !found {
				next = -1
				break
			}
		}
		if next >= 0 {
			return true
		}
	}
	return false
}

// codeFound reports whether code is exactly one of the source strings.
func codeFound(files []sourceFile, code string) bool {
	for _, f := range files {
		for _, s := range f.strings {
			if s == code {
				return true
			}
		}
	}
	return false
}

var (
	backtickRe  = regexp.MustCompile("`([^`]*)`")
	quotedRe    = regexp.MustCompile(`"([^"]+)"`)
	errParamRe  = regexp.MustCompile(`\berror="([^"]+)"`)
	jsonPairRe  = regexp.MustCompile(`"([a-z_]+)"\s*:\s*"([^"]*)"`)
	codeRe      = regexp.MustCompile(`^[a-z]+(?:_[a-z]+)+$`)
	tableRowRe  = regexp.MustCompile(`^\|(.*)\|\s*$`)
	errorsTitle = "## What each error means"
)

// check is one thing troubleshooting.md claims the software says.
type check struct {
	text string
	code bool // an error code: an exact source string; else a message
}

// errorTableChecks extracts the checks from the "what you see" column of the error table.
func errorTableChecks(t *testing.T) []check {
	t.Helper()
	src, err := os.ReadFile("troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	i := strings.Index(doc, errorsTitle)
	if i < 0 {
		t.Fatalf("troubleshooting.md has no %q section", errorsTitle)
	}
	section := doc[i+len(errorsTitle):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	var checks []check
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		m := tableRowRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(m[1], " | ")
		if len(cells) != 3 {
			t.Fatalf("troubleshooting.md: a row of the error table has %d cells, want 3: %s", len(cells), line)
		}
		seen := strings.TrimSpace(cells[1])
		if seen == "what you see" || strings.Trim(seen, "- ") == "" {
			continue
		}
		rows++
		// Code spans: error codes, JSON members, and quoted log text.
		for _, bt := range backtickRe.FindAllStringSubmatch(seen, -1) {
			span := bt[1]
			handled := false
			for _, e := range errParamRe.FindAllStringSubmatch(span, -1) {
				checks = append(checks, check{text: e[1], code: true})
				handled = true
			}
			for _, p := range jsonPairRe.FindAllStringSubmatch(span, -1) {
				handled = true
				switch {
				case p[2] == "" || wildcardRe.MatchString(p[2]) && strings.Trim(p[2], ".… ") == "":
				case codeRe.MatchString(p[2]) || !strings.Contains(p[2], " "):
					checks = append(checks, check{text: p[2], code: true})
				default:
					checks = append(checks, check{text: p[2]})
				}
			}
			switch {
			case handled:
			case codeRe.MatchString(span):
				checks = append(checks, check{text: span, code: true})
			case len(span) > 2 && strings.HasPrefix(span, `"`) && strings.HasSuffix(span, `"`) && !strings.Contains(span[1:len(span)-1], `"`):
				// A quoted description.
				checks = append(checks, check{text: span[1 : len(span)-1]})
			case strings.Contains(span, `"`) && strings.Contains(span, " ") && !strings.Contains(span, "="):
				// A log line's text with a quoted value: the quotes are what a %q printed.
				checks = append(checks, check{text: span})
			}
		}
		// Quoted messages outside code spans.
		plain := backtickRe.ReplaceAllString(seen, "")
		for _, q := range quotedRe.FindAllStringSubmatch(plain, -1) {
			checks = append(checks, check{text: q[1]})
		}
	}
	if rows < 10 || len(checks) < 15 {
		t.Fatalf("troubleshooting.md's error table gave %d rows and %d checks; the parser no longer reads it", rows, len(checks))
	}
	return checks
}

// TestTroubleshootingMessagesExist requires every message and error code that
// troubleshooting.md's error table shows to occur in the software's Go sources.
func TestTroubleshootingMessagesExist(t *testing.T) {
	files := goSources(t)
	for _, c := range errorTableChecks(t) {
		if c.code {
			if !codeFound(files, c.text) {
				t.Errorf("troubleshooting.md shows the error code %q, which no Go source string is", c.text)
			}
			continue
		}
		if !messageFound(files, c.text) {
			t.Errorf("troubleshooting.md quotes %q, which no Go source says", c.text)
		}
	}
}

// TestMessageMatching shows that the matcher accepts what the software can print and refuses
// what it cannot.
func TestMessageMatching(t *testing.T) {
	files := []sourceFile{
		{path: "a.go", strings: []string{
			"link your " + string(wild) + " account at " + string(wild) + ", then retry",
			"typ " + string(wild) + " is not an accepted access token type",
			"GitHub API rate limit exhausted for this token; it resets at " + string(wild),
		}},
		{path: "b.go", strings: []string{"timed out after ", " waiting for the browser login"}},
	}
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"link your GitHub account at .../account, then retry", true},
		{`typ "JWT" is not an accepted access token type`, true},
		{"rate limit ... resets at", true},
		{"timed out after 5m waiting for the browser login", false}, // parts split over two strings, no elision
		{"timed out after ... waiting for the browser login", true}, // nearby: one file
		{"link your GitHub account, then retry", false},
		{"typ is not an accepted refresh token type", false},
		{"resets at ... rate limit", false}, // order within one string; not both in another file's strings
		{"Octocat", false},                  // inside a wildcard only
	} {
		if got := messageFound(files, c.msg); got != c.want {
			t.Errorf("messageFound(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}

var (
	linkRe    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRe = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	fenceRe   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors returns the GitHub anchors of the Markdown file's headings.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool)
	for _, m := range headingRe.FindAllStringSubmatch(fenceRe.ReplaceAllString(string(src), ""), -1) {
		out[slug(m[1])] = true
	}
	return out
}

// slug is GitHub's heading anchor: lower case, punctuation other than - and _ dropped,
// spaces to hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestRelativeLinks checks that every relative link of README.md and docs/ (providers
// included) names an existing file or directory, and, for a Markdown file, an existing heading.
func TestRelativeLinks(t *testing.T) {
	docs, _ := filepath.Glob("*.md")
	providers, _ := filepath.Glob(filepath.Join("providers", "*.md"))
	files := append(append([]string{filepath.Join(repoRoot, "README.md")}, docs...), providers...)
	if len(docs) < 5 {
		t.Fatalf("found %d Markdown files in docs/", len(docs))
	}
	links := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := fenceRe.ReplaceAllString(string(src), "")
		for _, m := range linkRe.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s links to %s, which does not exist", f, target)
					continue
				}
			}
			if anchor != "" {
				if !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s links to %s: an anchor in a file that is not Markdown", f, target)
				} else if !anchors(t, dest)[anchor] {
					t.Errorf("%s links to %s, but %s has no heading with the anchor #%s", f, target, dest, anchor)
				}
			}
		}
	}
	if links < 20 {
		t.Fatalf("found only %d relative links; the link pattern no longer reads the files", links)
	}
}

// TestReadmeLayout checks README.md's layout section against the tree: every directory with
// Go files is named (as a path, or by its name on its parent's line), and every path that
// starts a line exists.
func TestReadmeLayout(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Layout\n\n```\n(.*?)```").FindSubmatch(src)
	if m == nil {
		t.Fatal("README.md has no layout block")
	}
	lines := strings.Split(string(m[1]), "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(f[0]))); err != nil {
			t.Errorf("README.md's layout names %s, which does not exist", f[0])
		}
	}
	dirs := make(map[string]bool)
	err = filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != repoRoot || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			rel, _ := filepath.Rel(repoRoot, filepath.Dir(path))
			if rel != "." {
				dirs[filepath.ToSlash(rel)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for d := range dirs {
		named := false
		for _, l := range lines {
			if strings.Contains(l, d) {
				named = true
				break
			}
			parent, base := filepath.ToSlash(filepath.Dir(d)), filepath.Base(d)
			if f := strings.Fields(l); len(f) > 0 && strings.TrimSuffix(f[0], "/") == parent && strings.Contains(l, base) {
				named = true
				break
			}
		}
		if !named {
			t.Errorf("README.md's layout does not name %s/, a directory with Go files", d)
		}
	}
}
