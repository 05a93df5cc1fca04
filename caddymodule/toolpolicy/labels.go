package toolpolicy

// OtherLabel is the metric label Labels gives a method that is not an MCP
// method, or a name no rule names.
const OtherLabel = "other"

// Labels returns metric labels for one call whose number of values the
// policy bounds, so that a client cannot grow a metric without limit by
// inventing names: the method when it is an MCP method, else OtherLabel;
// and, for the methods that name something (tools/call, prompts/get, the
// resources methods), the name when a rule names it exactly, else the
// pattern of the glob rule that matches it ("read_*"), else OtherLabel.
// The name label is "" for methods that name nothing. It allocates
// nothing.
func (p *Policy) Labels(method, name string) (methodLabel, nameLabel string) {
	info, known := knownMethods[method]
	if !known {
		return OtherLabel, ""
	}
	if m, ok := methodNames[method]; ok {
		method = m // the map's copy: the caller's may be a slice of a body
	}
	if info.named == noName {
		return method, ""
	}
	mr := p.methods[method]
	if mr == nil {
		return method, OtherLabel
	}
	if r := mr.exact[name]; r != nil {
		return method, r.pattern
	}
	for _, r := range mr.globs {
		if r.matches(name) {
			return method, r.pattern
		}
	}
	return method, OtherLabel
}

// CallLabels is Labels for a call that p decided (Decide notes the rule on
// the call): a call a rule decided takes that rule's labels without a
// second look-up; any other call costs what Labels does.
func (p *Policy) CallLabels(c *Call) (methodLabel, nameLabel string) {
	if r := c.rule; r != nil && c.ruleOf == p {
		// The rule's method is an MCP method, and a named method's rule
		// is the exact or glob rule Labels would find.
		return r.method, r.pattern
	}
	return p.Labels(c.Method, c.Name)
}
