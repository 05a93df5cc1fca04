package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GitHub OAuth web flow and REST calls, from GitHub's documented shapes:
//   POST {base}/login/oauth/access_token (Accept: application/json) with client_id, client_secret
//   and either code+redirect_uri or grant_type=refresh_token+refresh_token. GitHub answers 200
//   even for errors, with {"error": "...", "error_description": "..."}.
//   GET {api}/user with Authorization: Bearer <token> -> {"id": 1, "login": "...", "name": "..."}.

// errGitHubRejected means GitHub refused the grant (bad code or refresh token): the user must
// sign in or link again. Other errors are transient (network, 5xx).
var errGitHubRejected = errors.New("idp: GitHub rejected the grant")

type githubTokenResponse struct {
	AccessToken           string `json:"access_token"`
	TokenType             string `json:"token_type"`
	Scope                 string `json:"scope"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	Error                 string `json:"error"`
}

func (s *Server) githubConfigured() bool { return s.opts.GitHub.ClientID != "" }

func (s *Server) githubCallbackURL() string { return s.endpoint("/github/callback") }

func (s *Server) githubTokenRequest(ctx context.Context, form url.Values) (*githubToken, error) {
	g := s.opts.GitHub
	form.Set("client_id", g.ClientID)
	form.Set("client_secret", g.ClientSecret)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.BaseURL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := g.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("idp: GitHub token endpoint unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("idp: read GitHub token response: %w", err)
	}
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("idp: GitHub token endpoint status %d", resp.StatusCode)
	}
	var tr githubTokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("idp: GitHub token response is not JSON (status %d)", resp.StatusCode)
	}
	if tr.Error != "" || resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		return nil, fmt.Errorf("%w: %s", errGitHubRejected, quoteShort(tr.Error))
	}
	now := s.opts.Now()
	t := &githubToken{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken}
	if tr.ExpiresIn > 0 {
		t.Expiry = now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	if tr.RefreshTokenExpiresIn > 0 {
		t.RefreshExpiry = now.Add(time.Duration(tr.RefreshTokenExpiresIn) * time.Second)
	}
	return t, nil
}

func (s *Server) githubExchangeCode(ctx context.Context, code string) (*githubToken, error) {
	return s.githubTokenRequest(ctx, url.Values{"code": {code}, "redirect_uri": {s.githubCallbackURL()}})
}

func (s *Server) githubRefresh(ctx context.Context, refreshToken string) (*githubToken, error) {
	return s.githubTokenRequest(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

type githubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

var (
	// errGitHubBadCredentials: GET /user answered 401, the token is invalid, expired or revoked.
	errGitHubBadCredentials = errors.New("idp: GitHub rejected the token (401)")
	// errGitHubUnreachable: the request to GitHub's API failed (network error or timeout).
	errGitHubUnreachable = errors.New("idp: GitHub API unreachable")
)

// githubFetchUser calls GET {APIURL}/user with the token. Only a 200 with a JSON object holding a
// positive numeric "id" and a non-empty string "login" is accepted. Errors wrap
// errGitHubBadCredentials (401) or errGitHubUnreachable (network); others are bad answers (5xx,
// other statuses, invalid bodies). The token never appears in an error.
func (s *Server) githubFetchUser(ctx context.Context, token string) (*githubUser, error) {
	g := s.opts.GitHub
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.APIURL+"/user", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := g.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errGitHubUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, errGitHubBadCredentials
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("idp: GitHub /user status %d", resp.StatusCode)
	}
	var u githubUser
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil || u.ID <= 0 || u.Login == "" {
		return nil, errors.New("idp: GitHub /user response is invalid")
	}
	return &u, nil
}

func githubSub(id int64) string { return "github:" + strconv.FormatInt(id, 10) }

// saveGitHubToken seals the token with AES-256-GCM, the user's sub as associated data.
func (s *Server) saveGitHubToken(ctx context.Context, sub string, t *githubToken) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.db.PutSealed(ctx, SealedGitHub, sub, s.sealer.seal(b, sub))
}

func (s *Server) loadGitHubToken(ctx context.Context, sub string) (*githubToken, error) {
	t, _, err := s.loadGitHubTokenSealed(ctx, sub)
	return t, err
}

// loadGitHubTokenSealed also returns the stored ciphertext, for a later compare-and-swap.
func (s *Server) loadGitHubTokenSealed(ctx context.Context, sub string) (*githubToken, []byte, error) {
	sealed, err := s.db.GetSealed(ctx, SealedGitHub, sub)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.sealer.open(sealed, sub)
	if err != nil {
		return nil, nil, err
	}
	var t githubToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, nil, err
	}
	return &t, sealed, nil
}

var errGitHubTokenChanged = errors.New("idp: stored GitHub token changed during refresh")

// replaceGitHubToken stores t for sub only if the stored ciphertext is still prev (the value the
// refresh started from); otherwise it returns errGitHubTokenChanged and changes nothing, so a
// refresh in flight never resurrects a token the user unlinked or overwrites one they re-linked.
func (s *Server) replaceGitHubToken(ctx context.Context, sub string, prev []byte, t *githubToken) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	err = s.db.ReplaceSealed(ctx, SealedGitHub, sub, prev, s.sealer.seal(b, sub))
	if errors.Is(err, ErrChanged) {
		return errGitHubTokenChanged
	}
	return err
}

// refreshedElsewhere reports the user's stored GitHub token if it is no longer the ciphertext
// prev that a refresh started from and needs no refresh itself: another process sharing the
// storage refreshed (or the user re-linked) meanwhile.
func (s *Server) refreshedElsewhere(ctx context.Context, sub string, prev []byte) (*githubToken, bool) {
	var t *githubToken
	ok := storedSoon(ctx, func() bool {
		cur, sealed, err := s.loadGitHubTokenSealed(ctx, sub)
		if err != nil || bytes.Equal(sealed, prev) || s.githubNeedsRefresh(cur) {
			return false
		}
		t = cur
		return true
	})
	return t, ok
}

// storedSoon reports whether changed becomes true within about 1.5 s, asking at once and then
// at growing intervals. A refresh that lost a race to another replica learns it from the
// provider's refusal, which can arrive just before the winner has stored its result; a
// refusal that is real costs this wait once, before the user is told to sign in again.
func storedSoon(ctx context.Context, changed func() bool) bool {
	for _, d := range []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
		if changed() {
			return true
		}
	}
	return false
}

const githubExpirySkew = 30 * time.Second

func (s *Server) githubNeedsRefresh(t *githubToken) bool {
	return !t.Expiry.IsZero() && !s.opts.Now().Add(githubExpirySkew).Before(t.Expiry)
}

var (
	errNoGitHubToken     = errors.New("idp: user has no linked GitHub token")
	errGitHubUnavailable = errors.New("idp: GitHub unavailable")
)

// githubTokenFor returns a usable GitHub token for sub, refreshing an expired one with GitHub's
// refresh token. At most one refresh per user runs at a time: concurrent callers share it, and the
// token is re-read inside the flight so a caller arriving just after a refresh does not refresh
// again.
func (s *Server) githubTokenFor(ctx context.Context, sub string) (*githubToken, error) {
	t, err := s.loadGitHubToken(ctx, sub)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, errNoGitHubToken
		}
		return nil, err
	}
	if !s.githubNeedsRefresh(t) {
		return t, nil
	}
	v, err := s.ghFlight.Do(sub, func() (any, error) {
		// Detached from the first caller's cancellation, bounded, owned by the server.
		fctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		defer cancel()
		cur, prev, err := s.loadGitHubTokenSealed(fctx, sub)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, errNoGitHubToken
			}
			return nil, err
		}
		if !s.githubNeedsRefresh(cur) {
			return cur, nil
		}
		now := s.opts.Now()
		if cur.RefreshToken == "" || !s.githubConfigured() || (!cur.RefreshExpiry.IsZero() && !now.Before(cur.RefreshExpiry)) {
			return nil, errNoGitHubToken
		}
		nt, err := s.githubRefresh(fctx, cur.RefreshToken)
		if err != nil {
			if errors.Is(err, errGitHubRejected) {
				// GitHub's refresh tokens are single use, and the flight above is per process:
				// another replica on the same storage may have just refreshed with this one. Its
				// result is then stored, and is the user's token.
				if t, ok := s.refreshedElsewhere(fctx, sub, prev); ok {
					return t, nil
				}
				s.log.Info("GitHub refused to refresh a user's token; the user must link again", "sub", sub)
				return nil, errNoGitHubToken
			}
			s.log.Error("GitHub token refresh failed", "sub", sub, "error", err)
			return nil, errGitHubUnavailable
		}
		if nt.RefreshToken == "" { // GitHub normally rotates; keep the old one if it did not
			nt.RefreshToken, nt.RefreshExpiry = cur.RefreshToken, cur.RefreshExpiry
		}
		nt.GitHubID, nt.Login = cur.GitHubID, cur.Login
		if err := s.replaceGitHubToken(fctx, sub, prev, nt); err != nil {
			if !errors.Is(err, errGitHubTokenChanged) {
				return nil, err
			}
			// Unlinked or re-linked while GitHub answered: the user's latest choice wins and the
			// refreshed token is dropped.
			s.log.Info("GitHub token changed during refresh; refreshed token discarded", "sub", sub)
			now, err := s.loadGitHubToken(fctx, sub)
			if errors.Is(err, ErrNotFound) {
				return nil, errNoGitHubToken
			}
			if err != nil {
				return nil, err
			}
			if s.githubNeedsRefresh(now) {
				return nil, errNoGitHubToken
			}
			return now, nil
		}
		s.log.Debug("GitHub token refreshed", "sub", sub)
		return nt, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*githubToken), nil
}
