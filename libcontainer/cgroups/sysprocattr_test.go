package cgroups

import "syscall"

type syscallSysProcAttr = syscall.SysProcAttr
