// Build module for the OCI runtime-tools conformance suite.
//
// runtime-tools v0.9.0 has no go.mod of its own, so this throwaway module
// supplies its dependencies. run.sh copies this file (as go.mod) and
// runtime-tools.go.sum (as go.sum) into the work directory and builds
// runtimetest and validation/* from the module cache.
//
// Pins: runtime-spec v1.0.2 and selinux v1.8.0 as the suite requires;
// satori/go.uuid v1.2.0 (later revisions change NewV4's signature);
// the rest are versions of the same era that compile with current Go.
//
// To change a version: edit here, then in the work directory's src/ run
// `go mod tidy` (run.sh writes a tools.go there that imports every built
// package) and copy go.mod/go.sum back.
module crossrun-conformance-tools

go 1.21

require github.com/opencontainers/runtime-tools v0.9.0

require (
	github.com/blang/semver v3.5.1+incompatible // indirect
	github.com/cpuguy83/go-md2man/v2 v2.0.0-20190314233015-f79a8a8ca69d // indirect
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/hashicorp/go-multierror v1.0.0 // indirect
	github.com/mndrix/tap-go v0.0.0-20171203230836-629fa407e90b // indirect
	github.com/mrunalp/fileutils v0.5.0 // indirect
	github.com/opencontainers/runtime-spec v1.0.2 // indirect
	github.com/opencontainers/selinux v1.8.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/russross/blackfriday/v2 v2.0.1 // indirect
	github.com/satori/go.uuid v1.2.0 // indirect
	github.com/shurcooL/sanitized_anchor_name v1.0.0 // indirect
	github.com/sirupsen/logrus v1.8.1 // indirect
	github.com/syndtr/gocapability v0.0.0-20200815063812-42c35b437635 // indirect
	github.com/urfave/cli v1.22.5 // indirect
	github.com/willf/bitset v1.1.11 // indirect
	github.com/xeipuuv/gojsonpointer v0.0.0-20180127040702-4e3ac2762d5f // indirect
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415 // indirect
	github.com/xeipuuv/gojsonschema v1.2.0 // indirect
	golang.org/x/sys v0.0.0-20191115151921-52ab43148777 // indirect
	gopkg.in/yaml.v2 v2.2.2 // indirect
)
