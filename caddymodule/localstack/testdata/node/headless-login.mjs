// headlessLogin performs the IdP's login and consent as a person would, with fetch: it follows
// the authorization URL, fills the login form (username, optional GitHub token), approves the
// consent form, and stops at the redirect to the client's redirect URI, returning that URL.
// Cookies are kept in a small jar. Nothing here knows the IdP's internals beyond its HTML forms.

const formRe = /<form\b[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/gi;
const inputRe = /<input\b[^>]*>/gi;
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\b${name}="([^"]*)"`, "i"));
  return m ? decodeEntities(m[1]) : undefined;
};
const decodeEntities = (s) =>
  s.replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'");

export async function headlessLogin(authURL, redirectPrefix, { username, githubToken = "" } = {}) {
  const jar = new Map();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const remember = (res) => {
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  };
  let url = authURL;
  let init = { method: "GET" };
  for (let step = 0; step < 20; step++) {
    if (url.startsWith(redirectPrefix)) return url;
    const res = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers ?? {}), cookie: cookieHeader() } });
    remember(res);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get("location"), url).toString();
      init = { method: "GET" };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`login: ${url} answered ${res.status}: ${html.slice(0, 200)}`);
    const forms = [...html.matchAll(formRe)].map(([, action, body]) => ({ action: decodeEntities(action), body }));
    const login = forms.find((f) => /name="username"/.test(f.body));
    const consent = forms.find((f) => /value="approve"/.test(f.body));
    const form = login ?? consent;
    if (!form) throw new Error(`login: no login or consent form at ${url}`);
    const fields = new URLSearchParams();
    for (const [tag] of form.body.matchAll(inputRe)) {
      const name = attr(tag, "name");
      if (name && attr(tag, "type") === "hidden") fields.set(name, attr(tag, "value") ?? "");
    }
    if (login) {
      fields.set("username", username);
      fields.set("github_token", githubToken);
    } else {
      fields.set("action", "approve");
    }
    url = new URL(form.action, url).toString();
    init = { method: "POST", body: fields.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
  }
  throw new Error("login: too many steps");
}
