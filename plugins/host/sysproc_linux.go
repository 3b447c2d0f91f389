package host

import "syscall"

// sysProcAttr makes the kernel kill a plugin when the thread that
// launched it dies, so that a Sextant killed with SIGKILL leaves no plugin
// running. (The Go runtime keeps its threads for the life of the process
// unless a goroutine locked to one exits; the host locks none.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
