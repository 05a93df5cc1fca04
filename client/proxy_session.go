package client

// The proxy's side of the remote MCP session: the session and protocol version headers it
// carries, re-initializing a session the server forgot, the server's GET stream, and the end.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"
)

// sessionHeaders adds Mcp-Session-Id and (unless for initialize) MCP-Protocol-Version.
func (p *proxy) sessionHeaders(req *http.Request, version bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessionID != "" {
		req.Header.Set("Mcp-Session-Id", p.sessionID)
	}
	if version && p.version != "" {
		req.Header.Set("MCP-Protocol-Version", p.version)
	}
}

func (p *proxy) noteVersion(result json.RawMessage) {
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(result, &r) == nil && r.ProtocolVersion != "" {
		p.mu.Lock()
		p.version = r.ProtocolVersion
		p.mu.Unlock()
	}
}

// reinitialize replaces the expired session stale by replaying the host's initialize and
// notifications/initialized; the answers go nowhere (the host already has them).
func (p *proxy) reinitialize(stale string) error {
	p.reinitMu.Lock()
	defer p.reinitMu.Unlock()
	p.mu.Lock()
	if p.sessionID != stale {
		p.mu.Unlock()
		return nil // another request replaced it meanwhile
	}
	initMsg, initialized := p.initMsg, p.initializedOK
	p.sessionID = ""
	p.mu.Unlock()
	if initMsg == nil {
		return errors.New("the host has not initialized yet")
	}
	p.logf("the MCP session expired; opening a new one")
	var im message
	_ = json.Unmarshal(initMsg, &im)
	resp, err := p.post(initMsg, &im)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		drain(resp)
		return fmt.Errorf("the MCP server answered %d %s to initialize", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	p.mu.Lock()
	p.sessionID = resp.Header.Get("Mcp-Session-Id")
	p.mu.Unlock()
	answered, err := p.relay(resp, &im, func([]byte) {})
	if err != nil {
		return err
	}
	if !answered {
		return errors.New("the MCP server did not answer initialize")
	}
	if !initialized {
		return nil
	}
	note := []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	nm := &message{Method: "notifications/initialized"}
	r2, err := p.post(note, nm)
	if err != nil {
		return err
	}
	drain(r2)
	p.startListening()
	return nil
}

// startListening (re)opens the GET stream of server-initiated messages for the current session.
func (p *proxy) startListening() {
	ctx, cancel := context.WithCancel(p.listenCtx)
	p.mu.Lock()
	if p.stopListen != nil {
		p.stopListen()
	}
	p.stopListen = cancel
	p.mu.Unlock()
	p.lwg.Add(1)
	go func() {
		defer p.lwg.Done()
		p.listen(ctx)
	}()
}

// listen relays the server's GET stream until ctx ends or the server has none (405) or
// refuses it; a stream that ends is reopened with Last-Event-ID.
func (p *proxy) listen(ctx context.Context) {
	lastID := ""
	failures := 0
	for ctx.Err() == nil && failures < maxListenFailures {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.c.cfg.MCPURL, nil)
		if err != nil {
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		p.sessionHeaders(req, true)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		used := "" // the token the request goes with, unless the transport refreshes first
		if rec, _ := p.c.cachedToken(); rec != nil {
			used = rec.AccessToken
		}
		resp, err := p.hc.Do(req)
		switch {
		case err != nil:
			p.c.cfg.Logger.Debug("the GET stream failed", "err", clean(unwrapURLError(err)))
			failures++
		case resp.StatusCode == http.StatusUnauthorized:
			// The bearer transport recovers only POSTs: refresh here (unless a request did
			// meanwhile), then reopen. A login is left to the next POST.
			drain(resp)
			if used != "" {
				if _, err := p.c.refresh(ctx, used); err != nil {
					p.c.cfg.Logger.Debug("refresh for the GET stream failed", "err", err)
				}
			}
			failures++
		case resp.StatusCode != http.StatusOK:
			p.c.cfg.Logger.Debug("no GET stream", "status", resp.StatusCode)
			drain(resp)
			return // 405: the server offers none; 404: the session is gone
		default:
			ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if ct != "text/event-stream" {
				drain(resp)
				return
			}
			failures = 0
			_ = p.readEvents(resp.Body, p.write, &lastID)
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second << min(failures, 4)):
		}
	}
}

// endSession stops the GET stream and ends the remote session (DELETE), best effort.
func (p *proxy) endSession() {
	p.mu.Lock()
	sid := p.sessionID
	if p.stopListen != nil {
		p.stopListen()
	}
	p.mu.Unlock()
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.reqCtx), sessionEndTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.c.cfg.MCPURL, nil)
	if err != nil {
		return
	}
	p.sessionHeaders(req, true)
	if resp, err := p.hc.Do(req); err == nil {
		drain(resp)
	}
}
