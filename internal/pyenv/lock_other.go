//go:build !unix

package pyenv

import "errors"

// lock is only implemented on Unix, where the tests that use this package run.
func lock(string) (func(), error) {
	return nil, errors.New("pyenv: file locking is only implemented on Unix")
}
