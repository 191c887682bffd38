// Package fsutil holds the file-system steps that durability needs and the
// standard library leaves to the caller.
package fsutil

import "os"

// SyncDir fsyncs directory dir, so that the entries of files just created
// in it (or renamed into it) survive a crash: fsyncing a new file makes its
// contents durable, not its name.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
