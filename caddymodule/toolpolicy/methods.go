package toolpolicy

// The MCP methods a client may send to a server, across the protocol
// versions the gateway serves (2025-06-18, 2025-11-25, 2026-07-28). A rule
// may name only these; a request may carry any method (the backend answers
// unknown ones), and under a deny default a method outside this list is
// refused.
var knownMethods = map[string]methodInfo{
	"initialize":                         {},
	"ping":                               {},
	"tools/list":                         {list: "tools/call"},
	"tools/call":                         {named: nameField},
	"prompts/list":                       {list: "prompts/get"},
	"prompts/get":                        {named: nameField},
	"resources/list":                     {list: "resources/read"},
	"resources/templates/list":           {},
	"resources/read":                     {named: uriField},
	"resources/subscribe":                {named: uriField},
	"resources/unsubscribe":              {named: uriField},
	"completion/complete":                {},
	"logging/setLevel":                   {},
	"tasks/get":                          {},
	"tasks/list":                         {},
	"tasks/result":                       {},
	"tasks/cancel":                       {},
	"tasks/update":                       {},
	"server/discover":                    {},
	"notifications/initialized":          {},
	"notifications/cancelled":            {},
	"notifications/progress":             {},
	"notifications/roots/list_changed":   {},
	"notifications/tasks/status":         {},
	"notifications/elicitation/complete": {},
}

// methodNames maps each known method to itself, so that a method read from
// a body can share the map's string instead of allocating its own.
var methodNames = func() map[string]string {
	m := make(map[string]string, len(knownMethods))
	for k := range knownMethods {
		m[k] = k
	}
	return m
}()

// nameKind says which member of params names the object of a call.
type nameKind uint8

const (
	noName    nameKind = iota
	nameField          // params.name (tools/call, prompts/get)
	uriField           // params.uri (resources/read, resources/subscribe, resources/unsubscribe)
)

// methodInfo is what the engine knows about one MCP method.
type methodInfo struct {
	// named: the call names a tool, prompt or resource, which rules match
	// with their Name pattern and which the Mcp-Name header mirrors.
	named nameKind
	// list: for a list method, the method whose rules decide which items
	// of its result the caller sees (tools/list → tools/call).
	list string
}

// listKinds describes the result of each list method the engine filters:
// the member of result that holds the items and the member of an item that
// names it.
var listKinds = map[string]struct{ items, key string }{
	"tools/list":     {"tools", "name"},
	"prompts/list":   {"prompts", "name"},
	"resources/list": {"resources", "uri"},
}

// methodNameKind returns how a call of method names its object.
func methodNameKind(method string) nameKind {
	return knownMethods[method].named
}
