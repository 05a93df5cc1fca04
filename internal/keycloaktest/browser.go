package keycloaktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Browser drives Keycloak's login pages the way a user's browser would: cookies on, redirects
// followed one by one, until a redirect to the client's redirect URI, which it returns without
// following (nothing needs to listen there). Pages are read with golang.org/x/net/html; only the
// elements named below are used. A Browser is one user's session: use a new one per user.
type Browser struct {
	// Client carries the cookie jar; its CheckRedirect stops at every redirect.
	Client *http.Client
	// MaxSteps bounds the requests of one sign-in; default 20.
	MaxSteps int
}

// NewBrowser returns a Browser with an empty cookie jar over http.DefaultTransport.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &Browser{Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// SignInWithGitHub opens authURL (a Keycloak authorization request whose redirect_uri starts with
// redirectURI), clicks the identity provider's button on Keycloak's login page (the anchor with
// id "social-<alias>" inside kc-social-providers), picks githubLogin on the GitHub fake's sign-in
// page if it shows one (with passLoginHint and a login_hint on authURL it does not), and returns
// the final redirect to redirectURI, which carries code and state (or error).
func (b *Browser) SignInWithGitHub(ctx context.Context, authURL, redirectURI, alias, githubLogin string) (*url.URL, error) {
	return b.run(ctx, authURL, redirectURI, func(page *url.URL, doc *html.Node) (*http.Request, error) {
		if a := findElement(doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "id") == "social-"+alias }); a != nil {
			return get(ctx, page, attr(a, "href"))
		}
		if a := findElement(doc, func(n *html.Node) bool {
			return n.Data == "a" && attr(n, "class") == "user" && strings.EqualFold(text(n), githubLogin)
		}); a != nil {
			return get(ctx, page, attr(a, "href"))
		}
		return nil, nil
	})
}

// SignInWithPassword opens authURL and submits Keycloak's login form (id kc-form-login) with
// username and password, returning the final redirect to redirectURI.
func (b *Browser) SignInWithPassword(ctx context.Context, authURL, redirectURI, username, password string) (*url.URL, error) {
	return b.run(ctx, authURL, redirectURI, func(page *url.URL, doc *html.Node) (*http.Request, error) {
		form := findElement(doc, func(n *html.Node) bool { return n.Data == "form" && attr(n, "id") == "kc-form-login" })
		if form == nil {
			return nil, nil
		}
		action, err := page.Parse(attr(form, "action"))
		if err != nil {
			return nil, err
		}
		body := url.Values{"username": {username}, "password": {password}, "credentialId": {""}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	})
}

// ErrStuck is returned (wrapped, with the page's title and any message Keycloak shows) when a
// sign-in reaches a page it has no action for, such as an error page or a profile form.
var ErrStuck = errors.New("keycloaktest: sign-in stopped at a page")

// run follows redirects from authURL; on an HTML page it asks next for the request to send.
func (b *Browser) run(ctx context.Context, authURL, redirectURI string, next func(*url.URL, *html.Node) (*http.Request, error)) (*url.URL, error) {
	steps := b.MaxSteps
	if steps <= 0 {
		steps = 20
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("keycloaktest: %w", err)
	}
	for range steps {
		resp, err := b.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("keycloaktest: %s %s: %w", req.Method, redactURL(req.URL), err)
		}
		page := resp.Request.URL
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			resp.Body.Close()
			to, err := page.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("keycloaktest: bad Location from %s: %w", redactURL(page), err)
			}
			if strings.HasPrefix(to.String(), redirectURI) {
				return to, nil
			}
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, to.String(), nil); err != nil {
				return nil, fmt.Errorf("keycloaktest: %w", err)
			}
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("keycloaktest: %w", err)
		}
		doc, err := html.Parse(strings.NewReader(string(body)))
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%w: %s %s answered %s: %s", ErrStuck, req.Method, redactURL(page), resp.Status, describe(doc))
		}
		nreq, err := next(page, doc)
		if err != nil {
			return nil, fmt.Errorf("keycloaktest: on %s: %w", redactURL(page), err)
		}
		if nreq == nil {
			return nil, fmt.Errorf("%w: %s: %s", ErrStuck, redactURL(page), describe(doc))
		}
		req = nreq
	}
	return nil, fmt.Errorf("keycloaktest: sign-in took more than %d requests", steps)
}

func get(ctx context.Context, page *url.URL, href string) (*http.Request, error) {
	u, err := page.Parse(href)
	if err != nil {
		return nil, err
	}
	return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
}

// describe summarizes a page for an error: its title and Keycloak's message texts.
func describe(doc *html.Node) string {
	if doc == nil {
		return "(not HTML)"
	}
	parts := []string{}
	if t := findElement(doc, func(n *html.Node) bool { return n.Data == "title" }); t != nil {
		parts = append(parts, "title "+strconvQuote(text(t)))
	}
	walk(doc, func(n *html.Node) {
		cls := attr(n, "class")
		id := attr(n, "id")
		if strings.Contains(cls, "kc-feedback-text") || strings.Contains(cls, "instruction") || id == "input-error" ||
			strings.Contains(cls, "pf-v5-c-alert__title") || id == "kc-page-title" {
			if s := strings.Join(strings.Fields(text(n)), " "); s != "" {
				parts = append(parts, strconvQuote(s))
			}
		}
	})
	if f := findElement(doc, func(n *html.Node) bool { return n.Data == "form" }); f != nil {
		parts = append(parts, "form id "+strconvQuote(attr(f, "id")))
	}
	return strings.Join(parts, "; ")
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// redactURL drops the query, which carries codes and session identifiers, from a URL for errors.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment = "", ""
	return c.String()
}

func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func findElement(doc *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(doc, func(n *html.Node) {
		if found == nil && match(n) {
			found = n
		}
	})
	return found
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return strings.TrimSpace(b.String())
}
