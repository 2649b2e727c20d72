package seccomp

// zsyscalls.go is generated from libseccomp's syscall tables, which live
// beside the repository in ../shared/data (two levels up from here).
//go:generate go run ./internal/gen -data ../../shared/data -out zsyscalls.go
