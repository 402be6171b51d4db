package gguf

import (
	"fmt"
	"os"
	"syscall"
)

// OpenOption configures Open.
type OpenOption func(*openConfig)

type openConfig struct {
	progress func(done, total int64)
}

// WithProgress makes Open read through the whole mapping after validation,
// bringing the tensor data into the page cache, and report progress in bytes
// to fn as it goes. fn is called from the goroutine that calls Open.
func WithProgress(fn func(done, total int64)) OpenOption {
	return func(c *openConfig) { c.progress = fn }
}

// Open maps the file at path read-only and parses it as Parse does. The
// tensor bytes returned by Tensor are valid until Close.
func Open(path string, opts ...OpenOption) (*File, error) {
	var cfg openConfig
	for _, o := range opts {
		o(&cfg)
	}
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	size := st.Size()
	if size < headerMinSize {
		return nil, fmt.Errorf("gguf: %s: file too short for a header (%d bytes)", path, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("gguf: %s: file too large to map (%d bytes)", path, size)
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("gguf: mmap %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		_ = syscall.Munmap(data)
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	f.unmap = func() error { return syscall.Munmap(data) }
	if cfg.progress != nil {
		touch(data, cfg.progress)
	}
	return f, nil
}

// touch reads one byte per page so that the mapping is resident, reporting
// progress about every 16 MiB.
func touch(data []byte, progress func(done, total int64)) {
	const page, step = 4096, 16 << 20
	total := int64(len(data))
	var sink byte
	for off := 0; off < len(data); off += page {
		sink ^= data[off]
		if off%step == 0 {
			progress(int64(off), total)
		}
	}
	_ = sink
	progress(total, total)
}

// Close releases the mapping of a file returned by Open. Tensor bytes must
// not be used afterwards. Close of a File from Parse does nothing.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.data = nil
	if err != nil {
		return fmt.Errorf("gguf: munmap: %w", err)
	}
	return nil
}
