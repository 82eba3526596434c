package millrace

import (
	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// Secret returns the value of the named secret. It fails with
// abi.ErrnoDenied when the name is not granted and abi.ErrnoNotFound when
// it is granted but no admin has set it. The host redacts the value from
// the module's logs once it has been read.
func Secret(name string) (string, error) {
	var n uint32
	if errno := hostcall.SecretGet(name, &n); errno != abi.ErrnoSuccess {
		return "", hostError(abi.FnSecretGet, errno)
	}
	v, err := readResult(n)
	if err != nil {
		return "", err
	}
	return string(v), nil
}
