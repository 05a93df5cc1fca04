// Package keycloaktest runs a real Keycloak for tests: the server that mcpgate's gateway meets when
// Keycloak is the issuer, with a GitHub identity provider pointed at the GitHub fake
// (mcpbackend/githubfake), so that tests can find out and pin down what Keycloak really accepts and
// answers, such as the retrieval of a user's stored GitHub token.
//
// # Distribution and cache
//
// Dist finds an unpacked org.keycloak:keycloak-quarkus-dist (DefaultVersion unless asked):
//
//  1. $MCPGATE_KEYCLOAK_HOME, an unpacked distribution, is used as it is;
//  2. else CacheDir()/keycloak-VERSION ($XDG_CACHE_HOME/mcpgate/keycloak, or
//     ~/.cache/mcpgate/keycloak), if present;
//  3. else the zip at $MCPGATE_KEYCLOAK_ZIP, or CacheDir()/keycloak-quarkus-dist-VERSION.zip,
//     downloaded from Maven Central on first use and checked against the repository's .sha1, is
//     unpacked there.
//
// Start adds CacheDir()/built-keycloak-VERSION-HASH: a copy of the tree as start-dev leaves it
// after its build step for one set of Features and Args, so that later starts skip that step.
//
// Each step writes to a temporary name and renames, so test binaries of several packages may
// share the cache at once. Nothing is ever downloaded again once the zip is cached; delete the
// directory to start over (about 1 GB with two versions and their builds). A missing java or a failed download is an error naming the tool and
// the variables above; tests fail on it, they do not skip.
//
// # Server
//
// Start copies the distribution (about 180 MB; less than a second) into a temporary directory of
// its own, because start-dev rewrites lib/quarkus and data/, writes the realms into data/import,
// and runs "bin/kc.sh start-dev --import-realm --db=dev-mem" on 127.0.0.1 with free ports for
// HTTP and the management interface, the bootstrap administrator from the environment
// (KC_BOOTSTRAP_ADMIN_USERNAME / _PASSWORD) and any preview features asked for. It returns when
// the first realm's discovery document answers. Close stops the whole process group and removes
// the copy; a supervising shell also stops it and removes the copy when the test binary dies
// without Close (a go test timeout, kill -9).
//
// Starting is slow (from 40 seconds to several minutes on two shared cores, about half that with
// a cached build: see Server.StartDuration), so a test package starts one server in TestMain and
// shares it.
//
// # Realm, fake GitHub and browser
//
// MCPRealm (filled by RealmParams.Realm) is a realm "mcp" with GitHub identity providers pointed at
// a githubfake.OAuth, a public PKCE client, a confidential gateway client and password users
// without a GitHub link. Browser signs a user in through Keycloak's login pages (following the
// GitHub button, or filling the password form) and stops at the client's redirect URI.
// Server.AllowTokenExchangeV1 sets up the permissions of the legacy token exchange.
package keycloaktest
