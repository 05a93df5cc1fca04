package jwtverify

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// segmentEncoding decodes the three parts of a compact JWS: base64url without
// padding (RFC 7515 §2), strict, so that a token has exactly one spelling
// (what golang-jwt's parser does with WithStrictDecoding). Strict decoding
// still skips CR and LF; verifyJWS refuses those first.
var segmentEncoding = base64.RawURLEncoding.Strict()

// compactJWS is a compact JWS split at its two dots. signingInput is the
// first two segments with the dot between them, the bytes the signature is
// over (RFC 7515 §5.2 step 8).
type compactJWS struct {
	signingInput string
	header       string
	payload      string
	signature    string
}

// splitCompact splits raw, which the caller has checked to hold exactly two
// dots.
func splitCompact(raw string) compactJWS {
	first := strings.IndexByte(raw, '.')
	last := strings.LastIndexByte(raw, '.')
	return compactJWS{
		signingInput: raw[:last],
		header:       raw[:first],
		payload:      raw[first+1 : last],
		signature:    raw[last+1:],
	}
}

// joseHeader holds the members of a JOSE header that the verifier looks at.
// Every other member is ignored, except that crit anywhere is refused.
type joseHeader struct {
	alg, typ, kid          string
	algStr, typStr, kidStr bool // the member is a JSON string
	hasAlg, hasTyp, hasKid bool // the member is present (any JSON value)
	crit                   bool
}

// decodeHeader decodes a JOSE header, which must be a JSON object. It means
// exactly what golang-jwt's parser makes of the same bytes (a decode into
// map[string]any: keys match exactly, the last of duplicate keys wins), and
// FuzzHeaderDecode checks this.
//
// The profile of a fresh RS256 verification showed golang-jwt's reflective
// decode of the header into a map as the largest cost after the signature
// and the claims; almost every header is a few short ASCII strings, so that
// shape is read by a small scanner, and anything else by encoding/json.
func decodeHeader(data []byte) (joseHeader, error) {
	if !json.Valid(data) {
		return joseHeader{}, errMalformedHeader
	}
	if h, ok := decodeHeaderFast(data); ok {
		return h, nil
	}
	return decodeHeaderMap(data)
}

var errMalformedHeader = invalid(reasonMalformed, "token cannot be decoded")

// decodeHeaderMap is golang-jwt's own decode of the header.
func decodeHeaderMap(data []byte) (joseHeader, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		// nil: the header was JSON null, which golang-jwt takes as an
		// empty header without alg; it is refused here all the same.
		return joseHeader{}, errMalformedHeader
	}
	var h joseHeader
	h.alg, h.algStr = m["alg"].(string)
	h.typ, h.typStr = m["typ"].(string)
	h.kid, h.kidStr = m["kid"].(string)
	_, h.hasAlg = m["alg"]
	_, h.hasTyp = m["typ"]
	_, h.hasKid = m["kid"]
	_, h.crit = m["crit"]
	return h, nil
}

// decodeHeaderFast decodes data, which must be valid JSON, when it is an
// object whose keys are plain ASCII and whose alg, typ and kid, where
// present, are plain ASCII strings. false means "fall back to
// decodeHeaderMap".
func decodeHeaderFast(d []byte) (joseHeader, bool) {
	var h joseHeader
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		return h, false
	}
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return h, true
	}
	for i < len(d) {
		if d[i] != '"' {
			return h, false
		}
		kend := stringEnd(d, i)
		if kend < 0 {
			return h, false
		}
		key := d[i+1 : kend-1]
		if !plainASCII(key) {
			return h, false // an escape could spell "alg"
		}
		i = skipSpace(d, kend)
		if i >= len(d) || d[i] != ':' {
			return h, false
		}
		i = skipSpace(d, i+1)
		vend := valueEnd(d, i)
		if vend < 0 {
			return h, false
		}
		val := d[i:vend]
		var dst *string
		switch string(key) {
		case "alg":
			dst, h.hasAlg, h.algStr = &h.alg, true, true
		case "typ":
			dst, h.hasTyp, h.typStr = &h.typ, true, true
		case "kid":
			dst, h.hasKid, h.kidStr = &h.kid, true, true
		case "crit":
			h.crit = true
		}
		if dst != nil {
			if len(val) < 2 || val[0] != '"' || !plainASCII(val[1:len(val)-1]) {
				return h, false
			}
			*dst = string(val[1 : len(val)-1])
		}
		i = skipSpace(d, vend)
		if i >= len(d) {
			return h, false
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			return h, true
		default:
			return h, false
		}
	}
	return h, false
}
