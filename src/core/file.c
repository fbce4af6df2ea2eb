/* File helpers: whole reads, atomic writes, fsync of directories. */
#include <bulwark/core.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bw_write_full(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return bw_from_errno(errno);
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int bw_pwrite_full(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *c = p;
	while (n) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return bw_from_errno(errno);
		}
		if (w == 0)
			return BW_EIO;
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int bw_pread_full(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *c = p;
	while (n) {
		ssize_t r = pread(fd, c, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return bw_from_errno(errno);
		}
		if (r == 0)
			return BW_EFORMAT; /* short file: truncated */
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int bw_file_read(const char *path, size_t max, struct bw_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bw_errf(bw_from_errno(errno), "%s: %s", path, strerror(errno));
	int r = 0;
	size_t got = 0;
	for (;;) {
		size_t want = max - got < 65536 ? max - got : 65536;
		ssize_t n;
		if (want == 0) {
			/* at the limit: one more byte means the file is too big */
			char probe;
			n = read(fd, &probe, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0)
				r = bw_errf(BW_ETOOBIG, "%s: larger than %zu bytes", path, max);
			break;
		}
		if ((r = bw_buf_reserve(out, want)))
			break;
		n = read(fd, out->data + out->len, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = bw_errf(bw_from_errno(errno), "%s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		got += (size_t)n;
	}
	close(fd);
	return r;
}

int bw_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bw_from_errno(errno);
	int r = fsync(fd) ? bw_from_errno(errno) : 0;
	close(fd);
	return r;
}

static int dirname_of(const char *path, char *out, size_t n)
{
	const char *s = strrchr(path, '/');
	if (!s) {
		snprintf(out, n, ".");
		return 0;
	}
	size_t l = (size_t)(s - path);
	if (l == 0)
		l = 1;
	if (l >= n)
		return BW_ETOOBIG;
	memcpy(out, path, l);
	out[l] = 0;
	return 0;
}

/* excl without a temporary name: an unnamed file (O_TMPFILE) is written,
 * synced and linked in; nothing is left behind by a crash, and nothing
 * has to be removed (so it works in append-only directories, chattr +a). */
static int write_unnamed(const char *path, const char *dir, const void *p,
                         size_t n, int mode)
{
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
	if (fd < 0)
		return 1; /* not supported here: use a named temp file */
	char proc[64];
	int r = bw_write_full(fd, p, n);
	if (!r && fdatasync(fd))
		r = bw_from_errno(errno);
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (!r && linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW)) {
		int e = errno;
		r = bw_errf(bw_from_errno(e), "%s: %s", path, strerror(e));
	}
	close(fd);
	if (r)
		return bw_errf(r, "%s: write failed: %s", path, bw_strerror(r));
	return bw_fsync_dir(dir);
}

int bw_file_write_atomic(const char *path, const void *p, size_t n, int mode,
                         int excl)
{
	char tmp[4096], dir[4096];
	int r = dirname_of(path, dir, sizeof dir);
	if (r)
		return r;
	if (excl && (r = write_unnamed(path, dir, p, n, mode)) <= 0)
		return r;
	uint32_t rnd;
	rnd = (uint32_t)bw_now_ns() ^ (uint32_t)getpid() * 2654435761u;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%08x-%d", dir, rnd,
	                     (int)getpid()) >= sizeof tmp)
		return BW_ETOOBIG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return bw_errf(bw_from_errno(errno), "%s: %s", tmp, strerror(errno));
	r = bw_write_full(fd, p, n);
	if (!r && fdatasync(fd))
		r = bw_from_errno(errno);
	if (close(fd) && !r)
		r = bw_from_errno(errno);
	if (r) {
		unlink(tmp);
		return bw_errf(r, "%s: write failed: %s", path, bw_strerror(r));
	}
	if (excl) {
		/* link() refuses to replace an existing name */
		if (link(tmp, path)) {
			int e = errno;
			unlink(tmp);
			return bw_errf(bw_from_errno(e), "%s: %s", path, strerror(e));
		}
		unlink(tmp);
	} else if (rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		return bw_errf(bw_from_errno(e), "%s: %s", path, strerror(e));
	}
	return bw_fsync_dir(dir);
}

int bw_mkdir_p(const char *path, int mode)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n >= sizeof tmp)
		return BW_ETOOBIG;
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != 0)
			continue;
		char c = tmp[i];
		tmp[i] = 0;
		if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
			return bw_errf(bw_from_errno(errno), "%s: %s", tmp, strerror(errno));
		tmp[i] = c;
	}
	return 0;
}

int bw_path_join(struct bw_buf *out, const char *a, const char *b)
{
	bw_buf_reset(out);
	size_t la = strlen(a);
	int r = bw_buf_append(out, a, la);
	if (!r && la && a[la - 1] != '/')
		r = bw_buf_put_u8(out, '/');
	if (!r)
		r = bw_buf_append(out, b, strlen(b));
	if (!r)
		bw_buf_cstr(out);
	return r;
}
