package mcpstdio

// A process's calls in flight: ids mapped to and from the process's own, cancellation, the
// bridge's own round trips, and the requests the server sends to the client.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// newCall registers a call for the request m (of a client, or the bridge's own if internal;
// relay if the client takes server-to-client requests on its stream) and returns the message
// to send.
func (p *proc) newCall(m *message, session string, internal, relay bool) (*call, []byte, error) {
	n := p.nextID.Add(1)
	c := &call{pid: idKey(procID(n)), clientID: m.ID, session: session, internal: internal, relay: relay, n: n,
		final: make(chan []byte, 1), notes: make(chan []byte, 32)}
	out := *m
	out.ID = procID(n)
	if len(m.Params) > 0 {
		tok, _ := json.Marshal("mcpgate-" + strconv.FormatInt(n, 10))
		out.Params, c.clientToken = rewriteMeta(m.Params, tok)
		if c.clientToken != nil {
			c.tokenKey = idKey(tok)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != nil {
		return nil, nil, p.dead
	}
	if len(p.pending) >= p.cfg.maxCalls {
		return nil, nil, errTooManyCalls
	}
	p.pending[c.pid] = c
	if c.tokenKey != "" {
		p.progress[c.tokenKey] = c
	}
	return c, encode(&out), nil
}

// dropCall forgets c; an answer that still arrives is discarded.
func (p *proc) dropCall(c *call) {
	p.mu.Lock()
	p.forgetLocked(c)
	p.mu.Unlock()
}

// forgetLocked removes c and the server-to-client requests its stream carried (their
// answers can no longer come from that stream's client).
func (p *proc) forgetLocked(c *call) {
	delete(p.pending, c.pid)
	if c.tokenKey != "" {
		delete(p.progress, c.tokenKey)
	}
	for id, r := range p.serverReqs {
		if r.via == c.pid {
			delete(p.serverReqs, id)
		}
	}
}

// cancel tells the process to stop working on c (MCP notifications/cancelled with the
// bridge's id) and forgets it.
func (p *proc) cancel(c *call, reason string) {
	p.dropCall(c)
	params, _ := json.Marshal(map[string]any{"requestId": json.RawMessage(c.pid), "reason": reason})
	_ = p.send(encode(&message{Method: "notifications/cancelled", Params: params}))
}

// findCall returns the call of session whose client id is id, if any.
func (p *proc) findCall(session string, id json.RawMessage) *call {
	k := idKey(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.pending {
		if !c.internal && c.session == session && idKey(c.clientID) == k {
			return c
		}
	}
	return nil
}

// roundTrip sends a request of the bridge's own and waits for its result.
func (p *proc) roundTrip(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	c, b, err := p.newCall(&message{ID: procID(0), Method: method, Params: params}, "", true, false)
	if err != nil {
		return nil, err
	}
	if err := p.send(b); err != nil {
		p.dropCall(c)
		return nil, err
	}
	select {
	case b := <-c.final:
		var m message
		_ = json.Unmarshal(b, &m)
		if len(m.Error) > 0 {
			var e rpcError
			_ = json.Unmarshal(m.Error, &e)
			return nil, fmt.Errorf("%s: error %d: %s", method, e.Code, e.Message)
		}
		return m.Result, nil
	case <-ctx.Done():
		p.dropCall(c)
		return nil, fmt.Errorf("%s: no answer: %w", method, ctx.Err())
	}
}

// serverReq is a relayed server-to-client request awaiting the client's answer.
type serverReq struct {
	orig json.RawMessage // the process's id
	via  string          // pid of the call whose stream carried it; "" for a GET stream
}

// relayRequest passes a server-to-client request (sampling, elicitation, roots) to a client:
// on the event stream of the process's newest call whose client can take it, else on the
// user's GET streams. The request gets an id of the bridge's, so that the client's answer (a
// POST) finds its way back to this process. It returns why it could not relay, or "".
func (p *proc) relayRequest(m *message) string {
	p.mu.Lock()
	if len(p.serverReqs) >= maxServerRequests {
		p.mu.Unlock()
		return "too many server-to-client requests awaiting an answer"
	}
	p.nextSrv++
	bid := fmt.Sprintf("mcpgate-s%d-%d", p.serial, p.nextSrv)
	rawID, _ := json.Marshal(bid)
	orig := m.ID
	var target *call
	for _, c := range p.pending {
		if c.relay && (target == nil || c.n > target.n) {
			target = c
		}
	}
	via := ""
	if target != nil {
		via = target.pid
	}
	p.serverReqs[idKey(rawID)] = serverReq{orig: orig, via: via}
	p.mu.Unlock()
	m.ID = rawID
	out := encode(m)
	if (target != nil && deliver(target.notes, out)) || (p.onNotify != nil && p.onNotify(p, out)) {
		return ""
	}
	p.mu.Lock()
	delete(p.serverReqs, idKey(rawID))
	p.mu.Unlock()
	return "mcp_stdio has no client stream to relay this request to"
}

// answerServerRequest sends a client's answer to a relayed request back to the process, with
// the process's own id. It reports whether id was one of this process's relayed requests.
func (p *proc) answerServerRequest(m *message) bool {
	p.mu.Lock()
	r, ok := p.serverReqs[idKey(m.ID)]
	delete(p.serverReqs, idKey(m.ID))
	p.mu.Unlock()
	if !ok {
		return false
	}
	out := *m
	out.ID = r.orig
	_ = p.send(encode(&out))
	return true
}
