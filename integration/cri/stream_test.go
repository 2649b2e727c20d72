package cri

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The CRI's Exec and Attach return a URL on containerd's streaming server,
// which speaks Kubernetes' remotecommand protocol over SPDY or WebSocket.
// streamConn is a minimal WebSocket client for its "v4.channel.k8s.io"
// subprotocol: every binary message starts with a channel byte (0 stdin,
// 1 stdout, 2 stderr, 3 error: the final status as JSON).
type streamConn struct {
	conn net.Conn
	br   *bufio.Reader
}

const (
	chanStdin  = 0
	chanStdout = 1
	chanStderr = 2
	chanError  = 3

	streamProtocol = "v4.channel.k8s.io"
	websocketGUID  = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// dialInNetns connects to addr from the network namespace netns (where
// containerd, and so its streaming server on 127.0.0.1, runs). A socket
// stays in the namespace it was made in, so only the dial needs the
// namespace: it runs on a thread that is thrown away afterwards.
func dialInNetns(netns *os.File, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// openStream opens a WebSocket on a streaming URL from Exec or Attach.
func openStream(netns *os.File, rawURL string) (*streamConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("streaming URL %q: want http", rawURL)
	}
	conn, err := dialInNetns(netns, u.Host)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	keyBytes := make([]byte, 16)
	rand.Read(keyBytes)
	key := base64.StdEncoding.EncodeToString(keyBytes)
	req, _ := http.NewRequest("GET", rawURL, nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", streamProtocol)
	req.Header.Set("Origin", "http://"+u.Host)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s: %s", resp.Status, body)
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != streamProtocol {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: server chose subprotocol %q, want %q", p, streamProtocol)
	}
	return &streamConn{conn: conn, br: br}, nil
}

// send writes data on a channel as one masked binary frame.
func (s *streamConn) send(channel byte, data []byte) error {
	payload := append([]byte{channel}, data...)
	var hdr []byte
	hdr = append(hdr, 0x80|0x2) // FIN, binary
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	rand.Read(mask)
	hdr = append(hdr, mask...)
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	_, err := s.conn.Write(append(hdr, payload...))
	return err
}

// recv reads one message and returns its channel and data; io.EOF when the
// server closed the connection.
func (s *streamConn) recv() (byte, []byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(s.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, opcode := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(s.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(s.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(s.br, mask); err != nil {
				return 0, nil, err
			}
		}
		if n > 16<<20 {
			return 0, nil, fmt.Errorf("websocket frame of %d bytes", n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(s.br, data); err != nil {
			return 0, nil, err
		}
		if mask != nil {
			for i := range data {
				data[i] ^= mask[i%4]
			}
		}
		switch opcode {
		case 0x8: // close
			return 0, nil, io.EOF
		case 0x9, 0xa: // ping, pong: the server does not send them unasked
			continue
		}
		msg = append(msg, data...)
		if fin {
			break
		}
	}
	if len(msg) == 0 {
		return 0, nil, errors.New("empty websocket message")
	}
	return msg[0], msg[1:], nil
}

func (s *streamConn) Close() error { return s.conn.Close() }

// streamStatus is the v4 protocol's final status on the error channel: a
// Kubernetes metav1.Status.
type streamStatus struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// exitCode is the command's exit code the status reports (0 on Success).
func (st streamStatus) exitCode() (int, error) {
	if st.Status == "Success" {
		return 0, nil
	}
	for _, c := range st.Details.Causes {
		if c.Reason == "ExitCode" {
			return strconv.Atoi(c.Message)
		}
	}
	return -1, fmt.Errorf("stream failed: %s: %s", st.Reason, st.Message)
}

// session is what a finished stream delivered.
type session struct {
	stdout, stderr bytes.Buffer
	status         *streamStatus
}

// readUntil reads messages into sess until the error channel reports the
// end (status != nil), the connection closes, or stop says so.
func (s *streamConn) readUntil(sess *session, stop func(*session) bool) error {
	for {
		ch, data, err := s.recv()
		if err != nil {
			return err
		}
		switch ch {
		case chanStdout:
			sess.stdout.Write(data)
		case chanStderr:
			sess.stderr.Write(data)
		case chanError:
			if len(data) == 0 {
				continue
			}
			var st streamStatus
			if err := json.Unmarshal(data, &st); err != nil {
				return fmt.Errorf("status %q: %w", data, err)
			}
			sess.status = &st
			return nil
		}
		if stop != nil && stop(sess) {
			return nil
		}
	}
}
