package toolpolicy

// The MCP methods a client may send to a server, across the protocol
// versions the gateway serves (2025-06-18, 2025-11-25, 2026-07-28). A rule
// may name only these; a request may carry any method (the backend answers
// unknown ones), and under a deny default a method outside this list is
// refused.
var knownMethods = map[string]methodInfo{
	"initialize":                         {},
	"ping":                               {},
	"tools/list":                         {},
	"tools/call":                         {named: nameField},
	"prompts/list":                       {},
	"prompts/get":                        {named: nameField},
	"resources/list":                     {},
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
	"subscriptions/listen":               {},
	"notifications/initialized":          {},
	"notifications/cancelled":            {},
	"notifications/progress":             {},
	"notifications/roots/list_changed":   {},
	"notifications/tasks/status":         {},
	"notifications/elicitation/complete": {},
}

// Methods returns the MCP methods the engine knows, the ones a rule may
// name, in no particular order.
func Methods() []string {
	ms := make([]string, 0, len(knownMethods))
	for m := range knownMethods {
		ms = append(ms, m)
	}
	return ms
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
}

// listItems is one kind of item a result lists: the member of result that
// holds them, the member of an item that names it, and the method whose
// rules decide whether the caller sees it (tools → tools/call).
// template: the key holds an RFC 6570 URI template, not a URI (see
// Policy.templateVisible).
type listItems struct {
	items, key, method string
	template           bool
}

var (
	toolItems     = listItems{items: "tools", key: "name", method: "tools/call"}
	promptItems   = listItems{items: "prompts", key: "name", method: "prompts/get"}
	resourceItems = listItems{items: "resources", key: "uri", method: "resources/read"}
	// resourceTemplates and uriTemplate, lower-case for keyIs.
	templateItems = listItems{items: "resourcetemplates", key: "uritemplate", method: "resources/read", template: true}
)

// listKinds gives, for each method whose result lists tools, prompts or
// resources, the kinds of items it lists. server/discover (2026-07-28)
// may return the server's tools with its capabilities.
var listKinds = map[string][]listItems{
	"tools/list":               {toolItems},
	"prompts/list":             {promptItems},
	"resources/list":           {resourceItems},
	"resources/templates/list": {templateItems},
	"server/discover":          {toolItems, promptItems, resourceItems},
}

// methodNameKind returns how a call of method names its object.
func methodNameKind(method string) nameKind {
	return knownMethods[method].named
}
