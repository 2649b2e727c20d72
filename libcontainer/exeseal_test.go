package libcontainer

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// writeThrough tries what CVE-2019-5736 does: open the executable through
// its descriptor for writing and write to it.
func writeThrough(f *os.File) error {
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte("x"))
	return err
}

func TestSealedExecutableCopyIsNotWritable(t *testing.T) {
	f, err := sealExecutable("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeThrough(f); err == nil {
		t.Fatal("the sealed copy of the executable accepted a write")
	}
}

func TestReadOnlyExecutableIsNotWritable(t *testing.T) {
	f, err := readOnlyExecutable("/proc/self/exe")
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skip("skipped: cloning a mount needs root (CAP_SYS_ADMIN); crossrun falls back to the sealed copy")
		}
		t.Fatal(err)
	}
	defer f.Close()
	err = writeThrough(f)
	if err == nil {
		t.Fatal("the read-only view of the executable accepted a write")
	}
	if err != unix.EROFS && err != unix.ETXTBSY {
		t.Fatalf("write through the read-only view: %v, want EROFS", err)
	}
}
