//go:build !crossrun_faults

package libcontainer

// faultPoint marks a step of create (in the parent or in init) at which a
// test build, made with the crossrun_faults build tag, can stop crossrun. In
// a normal build it is an empty function the compiler inlines away.
func faultPoint(string) {}

// faultEnv is the fault-injection setting init inherits: none in a normal
// build.
func faultEnv() []string { return nil }
