module github.com/crossrun/crossrun/bench/libseccomp

go 1.26
