/* bw-ransim: helpers, crypto, safe opening below the marked root, the log
 * (see ransim.h; the safety rules are in ransim.c). */
#include "ransim.h"

/* ---- small helpers ------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) void errmsg(const char *fmt, ...)
{
	char line[2 * PATH_MAX + 256] = "bw-ransim: ";
	size_t k = strlen(line);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line + k, sizeof line - k - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	k += (size_t)n < sizeof line - k - 2 ? (size_t)n : sizeof line - k - 2;
	line[k++] = '\n';
	/* one write: lines from concurrent workers do not interleave */
	if (write(STDERR_FILENO, line, k) < 0)
		return;
}

const char *why(int r)
{
	switch (r) {
	case E_MARKER: return "is the marker or a ransom note (never touched)";
	case E_NOTREG: return "not a regular file (skipped)";
	case E_SHORT: return "file shrank while being read";
	case E_B64: return "not base64 ciphertext written by the b64 variant";
	case E_PATH: return "not a plain relative path below ROOT (no /, //, . or ..)";
	case -ELOOP: return "is a symlink (never followed)";
	case -EXDEV: return "on another mount (never crossed)";
	case -EMLINK: return "has other hard links (skipped: one may be outside ROOT)";
	case R_SKIP: return "not supported here";
	default: return strerror(-r);
	}
}

int64_t now_ns(void)
{
	return bw_now_ns();
}

void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int pread_all(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = pread(fd, b, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return E_SHORT;
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': mul = (uint64_t)1 << 10; end++; break;
	case 'm': case 'M': mul = (uint64_t)1 << 20; end++; break;
	case 'g': case 'G': mul = (uint64_t)1 << 30; end++; break;
	default: return -1;
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return b && a > b && !strcmp(s + a - b, suf);
}

int is_backup_name(const char *name)
{
	static const char *const sfx[] = {".bak", ".backup", ".old", ".vhd", ".vhdx", ".wbcat"};
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		size_t k = strlen(sfx[i]);
		if (n > k && !strcasecmp(name + n - k, sfx[i]))
			return 1;
	}
	return 0;
}

char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *s = malloc(a + b + 2);

	if (!s)
		return NULL;
	if (a) {
		memcpy(s, dir, a);
		s[a++] = '/';
	}
	memcpy(s + a, name, b + 1);
	return s;
}

int slist_push(struct slist *l, const char *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(s)))
		return -ENOMEM;
	l->n++;
	return 0;
}

void slist_free(struct slist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Takes ownership of rel, also on failure. */
int tlist_push(struct tlist *l, char *rel, uint64_t size, unsigned depth)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct target *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			free(rel);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = (struct target){rel, size, depth, l->n, -1};
	l->n++;
	return 0;
}

void tlist_free(struct tlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].rel);
		if (l->v[i].fd >= 0)
			close(l->v[i].fd);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* splitmix64: --seed makes random order and random extensions repeatable */
uint64_t prng_state;
uint64_t prng_next(void)
{
	uint64_t z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- crypto -------------------------------------------------------------- */

void nonce_for(const char *rel, uint8_t nonce[crypto_stream_chacha20_NONCEBYTES])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof h, (const uint8_t *)rel, strlen(rel), NULL, 0);
	memcpy(nonce, h, crypto_stream_chacha20_NONCEBYTES);
}

/* XOR buf, which holds the file's bytes at offset off, with the keystream
 * at that offset: encryption and decryption are the same operation. */
void ks_xor(const struct job *j, uint8_t *buf, size_t len, uint64_t off)
{
	const uint8_t *key = j->c->o->key;
	uint64_t ic = off / 64;
	size_t skip = (size_t)(off % 64);

	if (skip && len) {
		uint8_t blk[64] = {0};
		size_t n = 64 - skip < len ? 64 - skip : len;
		crypto_stream_chacha20_xor_ic(blk, blk, sizeof blk, j->nonce, ic, key);
		for (size_t i = 0; i < n; i++)
			buf[i] ^= blk[skip + i];
		buf += n;
		len -= n;
		ic++;
	}
	if (len)
		crypto_stream_chacha20_xor_ic(buf, buf, len, j->nonce, ic, key);
}

/* ---- the root, the marker, safe opening ---------------------------------- */

int xstat(int dfd, const char *name, struct xst *st)
{
	struct statx sx;
	int fl = AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT | (*name ? 0 : AT_EMPTY_PATH);

	memset(st, 0, sizeof *st);
	if (statx(dfd, name, fl, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0)
		return -errno;
	st->mode = sx.stx_mode;
	st->size = sx.stx_size;
	st->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	st->ino = sx.stx_ino;
	st->nlink = sx.stx_nlink;
	st->has_mnt = !!(sx.stx_mask & STATX_MNT_ID);
	st->mnt = sx.stx_mnt_id;
	return 0;
}

int in_root_fs(const struct ctx *c, const struct xst *st)
{
	if (st->dev != c->root.dev)
		return 0;
	return !st->has_mnt || !c->root.has_mnt || st->mnt == c->root.mnt;
}

static int is_denied_dir(const char *real)
{
	static const char *const deny[] = {
		"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64",
		"/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys",
		"/tmp", "/usr", "/var", "/work"};
	const char *home = getenv("HOME");

	for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
		if (!strcmp(real, deny[i]))
			return 1;
	return home && *home && !strcmp(real, home);
}

static int read_marker(struct ctx *c, char *buf, size_t cap, size_t *len)
{
	struct xst st;
	ssize_t n;
	int fd, r = 0;

	fd = openat(c->rootfd, MARKER_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if ((r = xstat(fd, "", &st)) < 0)
		goto out;
	if (!S_ISREG(st.mode) || !in_root_fs(c, &st) || st.size >= cap) {
		r = E_NOTREG;
		goto out;
	}
	n = read(fd, buf, cap - 1);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	buf[n] = 0;
	*len = (size_t)n;
	c->marker_dev = st.dev;
	c->marker_ino = st.ino;
out:
	close(fd);
	return r;
}

static int check_marker(struct ctx *c)
{
	char buf[PATH_MAX + 256], want[PATH_MAX + 256];
	size_t len = 0;
	int r = read_marker(c, buf, sizeof buf, &len);

	if (r == -ENOENT) {
		errmsg("%s: no %s here: refusing. Run `bw-ransim init %s` first, and only on a scratch tree",
		       c->real, MARKER_NAME, c->real);
		return -1;
	}
	if (r < 0) {
		errmsg("%s/%s: %s: refusing", c->real, MARKER_NAME, r == E_NOTREG ? "not a small regular file" : why(r));
		return -1;
	}
	snprintf(want, sizeof want, "%s\n%s\n", MARKER_MAGIC, c->real);
	if (strcmp(buf, want) != 0) {
		errmsg("%s/%s does not name this directory (copied from another tree?): refusing. "
		       "Run `bw-ransim init %s` if this tree is scratch data", c->real, MARKER_NAME, c->real);
		return -1;
	}
	return 0;
}

/* Resolves, checks and opens ROOT; with need_marker, also its marker. */
int open_root(struct ctx *c, const char *root, int need_marker)
{
	struct stat sb;

	if (!realpath(root, c->real)) {
		errmsg("%s: %s", root, strerror(errno));
		return -1;
	}
	if (is_denied_dir(c->real)) {
		errmsg("%s: refusing a system or home directory; use a scratch directory such as /tmp/x", c->real);
		return -1;
	}
	c->rootfd = open(c->real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->rootfd < 0) {
		errmsg("%s: %s", c->real, errno == ENOTDIR ? "not a directory" : strerror(errno));
		return -1;
	}
	if (xstat(c->rootfd, "", &c->root) < 0 || stat(c->real, &sb) < 0 ||
	    sb.st_dev != c->root.dev || sb.st_ino != c->root.ino) {
		errmsg("%s: changed while being opened", c->real);
		return -1;
	}
	return need_marker ? check_marker(c) : 0;
}

static int check_rel(const char *rel)
{
	const char *p = rel;

	if (!*rel || strlen(rel) >= PATH_MAX || *rel == '/')
		return E_PATH;
	for (;;) {
		const char *q = strchr(p, '/');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return E_PATH;
		if (!q)
			return 0;
		p = q + 1;
	}
}

/* The end of a job: its result counted, its descriptors closed. */
int job_end(struct job *j, int r)
{
	count(j->c, r, j->size);
	if (j->fd >= 0)
		close(j->fd);
	if (j->pdir >= 0)
		close(j->pdir);
	return r;
}

/* Directory name under dirfd, opened O_NOFOLLOW and checked to be on
 * ROOT's mount.  Returns an fd the caller closes, or a negative code. */
static int open_subdir(struct ctx *c, int dirfd, const char *name)
{
	struct xst st = {0};
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = fd < 0 ? -errno : xstat(fd, "", &st);
	if (r == 0 && !in_root_fs(c, &st))
		r = -EXDEV;
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

/* Opens the directory holding rel, walking each component from ROOT with
 * O_NOFOLLOW and staying on ROOT's mount.  *base points into rel.  Returns
 * an fd the caller closes, or a negative code. */
int open_parent(struct ctx *c, const char *rel, const char **base)
{
	char comp[NAME_MAX + 1];
	const char *p = rel, *q;
	int fd, nfd, r;

	if ((r = check_rel(rel)) < 0)
		return r;
	if ((fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	while ((q = strchr(p, '/')) != NULL) {
		memcpy(comp, p, (size_t)(q - p));
		comp[q - p] = 0;
		nfd = open_subdir(c, fd, comp);
		close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
		p = q + 1;
	}
	*base = p;
	return fd;
}

/* The directory rel itself ("" is ROOT). */
int open_dir(struct ctx *c, const char *rel)
{
	const char *base;
	int pdir, fd;

	if (!*rel)
		return fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);
	if ((pdir = open_parent(c, rel, &base)) < 0)
		return pdir;
	fd = open_subdir(c, pdir, base);
	close(pdir);
	return fd;
}

int check_file(const struct ctx *c, const struct xst *st)
{
	if (!S_ISREG(st->mode))
		return E_NOTREG;
	if (!in_root_fs(c, st))
		return -EXDEV;
	if (st->dev == c->marker_dev && st->ino == c->marker_ino)
		return E_MARKER;
	if (st->nlink != 1)
		return -EMLINK;
	return 0;
}

/* Opens base in pdir: a regular file with one link on ROOT's mount that is
 * not the marker.  Checked before opening too, so that no device or FIFO
 * is ever opened.  Returns the fd or a negative code. */
int open_target(struct ctx *c, int pdir, const char *base, int flags, struct xst *st)
{
	struct xst pre = {0};
	int fd, r;

	if (!strcmp(base, MARKER_NAME))
		return E_MARKER;
	if ((r = xstat(pdir, base, &pre)) < 0)
		return r;
	if (S_ISLNK(pre.mode))
		return -ELOOP;
	if ((r = check_file(c, &pre)) < 0)
		return r;
	fd = openat(pdir, base, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	r = xstat(fd, "", st);
	if (r == 0)
		r = check_file(c, st);
	if (r == 0 && (st->ino != pre.ino || st->dev != pre.dev))
		r = -EAGAIN;
	if (r == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* ---- log ----------------------------------------------------------------- */

int open_log(struct ctx *c, const char *path, int trunc)
{
	char dir[PATH_MAX], parent[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	size_t rl = strlen(c->real);
	struct stat sb;
	int n;

	if (!realpath(path, real)) { /* not there yet: resolve its directory */
		if (errno != ENOENT || !*base || !strcmp(base, ".") || !strcmp(base, "..")) {
			errmsg("--log %s: %s", path, strerror(errno));
			return -1;
		}
		snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
		if (!realpath(*dir ? dir : "/", parent)) {
			errmsg("--log %s: %s", path, strerror(errno));
			return -1;
		}
		n = snprintf(real, sizeof real, "%s/%s", strcmp(parent, "/") ? parent : "", base);
		if (n < 0 || (size_t)n >= sizeof real) {
			errmsg("--log %s: path too long", path);
			return -1;
		}
	}
	if (!strncmp(real, c->real, rl) && (real[rl] == 0 || real[rl] == '/')) {
		errmsg("--log %s is inside ROOT %s: refusing (the emulator would log over its own damage)", real, c->real);
		return -1;
	}
	c->logfd = open(real, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (trunc ? O_TRUNC : 0), 0644);
	if (c->logfd < 0 || fstat(c->logfd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		errmsg("--log %s: %s", real, c->logfd < 0 ? strerror(errno) : "not a regular file");
		return -1;
	}
	snprintf(c->logpath, sizeof c->logpath, "%s", real);
	return 0;
}

void log_file(struct ctx *c, int64_t t0, int64_t t1, const char *rel)
{
	char line[2 * PATH_MAX + 64];
	size_t k;
	int n;

	if (c->logfd < 0)
		return;
	n = snprintf(line, sizeof line, "%" PRId64 " %" PRId64 " ", t0, t1);
	k = (size_t)n;
	for (const char *p = rel; *p && k + 3 < sizeof line; p++) {
		if (*p == '\\' || *p == '\n' || *p == '\r') {
			line[k++] = '\\';
			line[k++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : '\\';
		} else {
			line[k++] = *p;
		}
	}
	line[k++] = '\n';
	if (write_all(c->logfd, line, k) < 0)
		errmsg("log %s: %s", c->logpath, strerror(errno));
}

void job_mark(struct job *j)
{
	if (!j->t_first)
		j->t_first = now_ns();
}
