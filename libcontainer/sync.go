package libcontainer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The parent and the init process talk over a stream socketpair. Each message
// is a 4-byte big-endian length followed by that many bytes of JSON; file
// descriptors ride along with the length header as SCM_RIGHTS.

type msgType string

const (
	msgBootstrap   msgType = "bootstrap"    // parent -> init: what to set up
	msgCgroup      msgType = "cgroup"       // parent -> init: the cgroup is ready; which v1 tasks files to join
	msgRunHooks    msgType = "run-hooks"    // init -> parent: run prestart/createRuntime now
	msgHooksDone   msgType = "hooks-done"   // parent -> init
	msgSeccompFd   msgType = "seccomp-fd"   // init -> parent: a seccomp notify fd is attached
	msgSeccompDone msgType = "seccomp-done" // parent -> init
	msgReady       msgType = "ready"        // init -> parent: set up, waiting on the exec fifo
	msgError       msgType = "error"        // init -> parent: setup failed
	msgPid         msgType = "pid"          // nsenter -> parent: the pid of the forked init
)

type syncMsg struct {
	Type    msgType         `json:"type"`
	Message string          `json:"message,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type syncSocket struct {
	f *os.File
}

const maxSyncMsg = 64 << 20

func newSyncPair() (parent, child *syncSocket, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return &syncSocket{os.NewFile(uintptr(fds[0]), "sync-parent")}, &syncSocket{os.NewFile(uintptr(fds[1]), "sync-child")}, nil
}

func (s *syncSocket) Close() error { return s.f.Close() }

func (s *syncSocket) send(t msgType, data any, fds ...int) error {
	m := syncMsg{Type: t}
	if data != nil {
		if e, ok := data.(string); ok && t == msgError {
			m.Message = e
		} else if raw, ok := data.(json.RawMessage); ok {
			m.Data = raw // already encoded (the bootstrap: encodeBootstrap)
		} else {
			raw, err := json.Marshal(data)
			if err != nil {
				return err
			}
			m.Data = raw
		}
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[4:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	sent := 0
	var serr error
	cerr := rc.Write(func(fd uintptr) bool {
		for sent < len(buf) {
			var n int
			if sent == 0 {
				n, serr = unix.SendmsgN(int(fd), buf, oob, nil, 0)
			} else {
				n, serr = unix.Write(int(fd), buf[sent:])
			}
			if serr == unix.EAGAIN {
				return false
			}
			if serr == unix.EINTR {
				continue
			}
			if serr != nil {
				return true
			}
			sent += n
		}
		return true
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

// recv reads one message and any descriptors sent with it.
func (s *syncSocket) recv() (*syncMsg, []int, error) {
	hdr := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*8))
	rc, err := s.f.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var n, oobn int
	var rerr error
	cerr := rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), hdr, oob, unix.MSG_CMSG_CLOEXEC)
			if rerr == unix.EINTR {
				continue
			}
			return rerr != unix.EAGAIN
		}
	})
	if cerr != nil {
		return nil, nil, cerr
	}
	if rerr != nil {
		return nil, nil, rerr
	}
	if n == 0 {
		return nil, nil, io.EOF
	}
	var fds []int
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, c := range cmsgs {
				if f, err := unix.ParseUnixRights(&c); err == nil {
					fds = append(fds, f...)
				}
			}
		}
	}
	if n < 4 {
		if _, err := io.ReadFull(s.f, hdr[n:]); err != nil {
			return nil, fds, err
		}
	}
	size := binary.BigEndian.Uint32(hdr)
	if size > maxSyncMsg {
		return nil, fds, fmt.Errorf("sync message of %d bytes is too large", size)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(s.f, payload); err != nil {
		return nil, fds, err
	}
	var m syncMsg
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, fds, fmt.Errorf("decode sync message: %w", err)
	}
	return &m, fds, nil
}

// expect reads one message and fails unless it has type t. An error message
// from the other side becomes the returned error.
func (s *syncSocket) expect(t msgType) (*syncMsg, error) {
	m, _, err := s.recv()
	if err != nil {
		return nil, err
	}
	if m.Type == msgError {
		return nil, errors.New(m.Message)
	}
	if m.Type != t {
		return nil, fmt.Errorf("sync: expected %q, got %q", t, m.Type)
	}
	return m, nil
}
