package cgroups

import (
	"encoding/binary"
	"syscall"
)

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func nativeEndian() binary.ByteOrder { return binary.LittleEndian }

type syscallSysProcAttr = syscall.SysProcAttr
