// Empty on purpose: an assembly file in the package lets main.go declare the go:linkname functions
// (detrand.Disable, detrand.Bool) without bodies.
