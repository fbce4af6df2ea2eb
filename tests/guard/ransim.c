/*
 * bw-ransim: a SAFE ransomware emulator, for testing and benchmarking
 * `bulwark guard`.
 *
 * It does to a scratch tree what ransomware does to a real one (in-place
 * encryption, encrypted copies with the original deleted, renames, wipes,
 * intermittent encryption, writes through mmap, O_DIRECT and io_uring, many
 * processes), so that the guard's detection, freezing and rollback can be
 * measured.  It must never be able to hurt anything else, hence:
 *
 * SAFETY RULES
 *  1. Opt-in per tree.  `bw-ransim init DIR` writes DIR/.bw-ransim-marker
 *     (MARKER_MAGIC, then realpath(DIR)).  attack and decrypt refuse to run
 *     unless ROOT/.bw-ransim-marker is a regular file of exactly that form
 *     naming realpath(ROOT): a marker copied from another tree is refused.
 *     ROOT must be a directory; "/" and the top-level system directories
 *     (/etc, /usr, /home, ...) are refused even with a marker.
 *  2. Every file is reached by openat/statx relative to directory fds opened
 *     one component at a time from ROOT's fd, always with O_NOFOLLOW:
 *     symlinks are never followed, "." and ".." never used, anything on
 *     another mount (st_dev or mount id differs from ROOT's) is skipped,
 *     files with more than one hard link are skipped (the other link may be
 *     outside ROOT), and the marker file is never touched.
 *  3. No network code, no persistence, no privilege changes, no signals to
 *     other processes.  Its only helpers are its own children: fork(), an
 *     exec of /proc/self/exe, or /bin/sh running a script generated in a
 *     mkdtemp directory under /tmp (outside ROOT) that runs bw-ransim.
 *  4. The damage is a reversible keyed transform where it can be: ChaCha20
 *     (libsodium crypto_stream_chacha20_xor_ic) keyed by --key (default: the
 *     public test key DEFAULT_KEY), nonce = the first 8 bytes of
 *     BLAKE2b-128(path relative to ROOT, before any rename), keystream at
 *     the file offset.  `bw-ransim decrypt` reverses every variant except
 *     the wipers (truncate, punchhole) and --delete-backups-first.
 *  5. --log must be outside ROOT.
 *
 * The log gets "start <ns>" and then, per file, one line written with a
 * single write(2) (no stdio buffer, so it survives SIGKILL):
 *   <ns CLOCK_REALTIME before the first damaging syscall> <ns when done> <rel>
 * A file whose damage was under way when the process was killed has no
 * line: compare the tree with a manifest to see everything that changed.
 */
#include <bulwark/core.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARKER_NAME ".bw-ransim-marker"
#define MARKER_MAGIC "bw-ransim marker v1: scratch tree, bw-ransim may damage every file below"
#define NOTE_NAME "HOW_TO_RESTORE_FILES.txt"
#define NOTE_MAGIC "bw-ransim ransom note v1"
#define TMP_PREFIX ".bwrtmp."
#define FIXED_EXT ".bwlocked"
#define DEFAULT_KEY "bulwark-ransim-fixed-test-key-32" /* 32 bytes, public */

#define RC_OK 0
#define RC_ERR 1
#define RC_USAGE 2
#define RC_SKIP 77

/* internal negative codes next to -errno values */
#define R_SKIP (-100000)   /* feature not available here: exit 77 */
#define E_MARKER (-100001) /* the file is the marker */
#define E_NOTREG (-100002) /* not a regular file */
#define E_SHORT (-100003)  /* file shrank while being read */
#define E_B64 (-100004)    /* not base64 ciphertext */
#define E_PATH (-100005)   /* not a plain relative path */

#define CHUNK ((size_t)1 << 20)
#define WHOLE_MAX ((uint64_t)1 << 30) /* largest file read whole */
#define HEADER_LEN 4096
#define NOFM_BLOCK 65536
#define MAX_DEPTH 64
#define B64_KEEP 16

struct job;
enum vclass { VC_FULL, VC_HEADER, VC_STRIPES, VC_NOFM, VC_PERCENT, VC_B64, VC_WIPE };
enum order { ORD_DFS, ORD_BFS, ORD_RANDOM, ORD_SIZE, ORD_REVERSE };
enum mode { M_SEQ, M_FORK, M_THREADS, M_POOL, M_EXECRELAY };
enum cmd { CMD_INIT, CMD_ATTACK, CMD_DECRYPT };
enum walk_kind { W_ATTACK, W_ALL, W_SUFFIX };

struct variant {
	const char *name;
	int (*fn)(struct job *j);
	enum vclass cls;
	int oflags;  /* how the attack opens the file before calling fn */
	int renames; /* the damaged file ends up as NAME+ext */
	const char *help;
};

struct opts {
	enum cmd cmd;
	const char *root;
	const struct variant *variant;
	uint8_t key[32];
	char ext[40]; /* "" for --ext none */
	int ext_random, note, delbak, quiet, preopen, script, internal;
	enum order order;
	enum mode mode;
	int mode_set;
	unsigned workers, batch, n, m, percent;
	uint64_t max_files, min_size, max_size, delay_ms, preopen_wait_ms, seed;
	const char *only, *log, *from_log;
	int child_files, child_report;
};

struct xst {
	mode_t mode;
	uint64_t size, mnt;
	dev_t dev;
	ino_t ino;
	nlink_t nlink;
	int has_mnt;
};

struct counters { /* in MAP_SHARED memory: workers may be processes */
	uint64_t files, bytes, errors, deleted;
	int skip;
};

struct ctx {
	struct opts *o;
	char real[PATH_MAX];
	char logpath[PATH_MAX];
	char exe[PATH_MAX];
	int rootfd, logfd;
	struct xst root;
	dev_t marker_dev;
	ino_t marker_ino;
	struct counters *cnt;
};

struct target {
	char *rel;
	uint64_t size;
	unsigned depth;
	size_t seq;
	int fd; /* --preopen: already open O_RDWR, else -1 */
};
struct tlist {
	struct target *v;
	size_t n, cap;
};
struct slist {
	char **v;
	size_t n, cap;
};

struct job {
	struct ctx *c;
	const char *rel; /* original path: the nonce comes from it */
	const char *base;
	int pdir, fd, preopened;
	uint64_t size;
	mode_t mode;
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
	int64_t t_first;
};

static uint64_t tmp_seq;

/* ---- small helpers ------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static void errmsg(const char *fmt, ...)
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

static const char *why(int r)
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

static int64_t now_ns(void)
{
	return bw_now_ns();
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int write_all(int fd, const void *p, size_t n)
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

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
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

static int pread_all(int fd, void *p, size_t n, uint64_t off)
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

static int parse_u64(const char *s, uint64_t *out)
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

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return b && a > b && !strcmp(s + a - b, suf);
}

static int is_backup_name(const char *name)
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

static char *join(const char *dir, const char *name)
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

static int slist_push(struct slist *l, const char *s)
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

static void slist_free(struct slist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Takes ownership of rel, also on failure. */
static int tlist_push(struct tlist *l, char *rel, uint64_t size, unsigned depth)
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

static void tlist_free(struct tlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].rel);
		if (l->v[i].fd >= 0)
			close(l->v[i].fd);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* splitmix64: --seed makes random order and random extensions repeatable */
static uint64_t prng_state;
static uint64_t prng_next(void)
{
	uint64_t z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- crypto -------------------------------------------------------------- */

static void nonce_for(const char *rel, uint8_t nonce[crypto_stream_chacha20_NONCEBYTES])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof h, (const uint8_t *)rel, strlen(rel), NULL, 0);
	memcpy(nonce, h, crypto_stream_chacha20_NONCEBYTES);
}

/* XOR buf, which holds the file's bytes at offset off, with the keystream
 * at that offset: encryption and decryption are the same operation. */
static void ks_xor(const struct job *j, uint8_t *buf, size_t len, uint64_t off)
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

static int xstat(int dfd, const char *name, struct xst *st)
{
	struct statx sx;
	int fl = AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT | (*name ? 0 : AT_EMPTY_PATH);

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

static int in_root_fs(const struct ctx *c, const struct xst *st)
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
static int open_root(struct ctx *c, const char *root, int need_marker)
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

/* Opens the directory holding rel, walking each component from ROOT with
 * O_NOFOLLOW and staying on ROOT's mount.  *base points into rel.  Returns
 * an fd the caller closes, or a negative code. */
static int open_parent(struct ctx *c, const char *rel, const char **base)
{
	char comp[NAME_MAX + 1];
	const char *p = rel, *q;
	struct xst st;
	int fd, nfd, r;

	if ((r = check_rel(rel)) < 0)
		return r;
	if ((fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	while ((q = strchr(p, '/')) != NULL) {
		memcpy(comp, p, (size_t)(q - p));
		comp[q - p] = 0;
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = nfd < 0 ? -errno : xstat(nfd, "", &st);
		close(fd);
		if (r == 0 && !in_root_fs(c, &st))
			r = -EXDEV;
		if (r < 0) {
			if (nfd >= 0)
				close(nfd);
			return r;
		}
		fd = nfd;
		p = q + 1;
	}
	*base = p;
	return fd;
}

/* The directory rel itself ("" is ROOT). */
static int open_dir(struct ctx *c, const char *rel)
{
	const char *base;
	struct xst st;
	int pdir, fd, r;

	if (!*rel)
		return fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);
	if ((pdir = open_parent(c, rel, &base)) < 0)
		return pdir;
	fd = openat(pdir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : xstat(fd, "", &st);
	close(pdir);
	if (r == 0 && !in_root_fs(c, &st))
		r = -EXDEV;
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

static int check_file(const struct ctx *c, const struct xst *st)
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
static int open_target(struct ctx *c, int pdir, const char *base, int flags, struct xst *st)
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

static int open_log(struct ctx *c, const char *path, int trunc)
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

static void log_file(struct ctx *c, int64_t t0, int64_t t1, const char *rel)
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

static void job_mark(struct job *j)
{
	if (!j->t_first)
		j->t_first = now_ns();
}

/* ---- transforms shared by the variants and decrypt ----------------------- */

/* The next encrypted byte range [*s, *e) at or after pos, for a class. */
static int next_range(const struct opts *o, enum vclass cls, uint64_t size, uint64_t pos,
                      uint64_t *s, uint64_t *e)
{
	uint64_t lim, b;

	if (pos >= size)
		return 0;
	switch (cls) {
	case VC_HEADER:
	case VC_PERCENT:
		lim = HEADER_LEN;
		if (cls == VC_PERCENT) {
			uint64_t p = size / 100 * o->percent + size % 100 * o->percent / 100;
			if (p > lim)
				lim = p;
		}
		if (lim > size)
			lim = size;
		if (pos >= lim)
			return 0;
		*s = pos;
		*e = lim;
		return 1;
	case VC_STRIPES: /* bytes 0-15 of every 32 */
		b = pos - pos % 32;
		*s = pos % 32 < 16 ? pos : b + 32;
		*e = pos % 32 < 16 ? b + 16 : b + 48;
		break;
	case VC_NOFM: /* blocks 0..n-1 of every m */
		b = pos / NOFM_BLOCK;
		if (b % o->m < o->n) {
			*s = pos;
		} else {
			b = (b / o->m + 1) * o->m;
			*s = b * NOFM_BLOCK;
		}
		*e = (b + 1) * NOFM_BLOCK;
		break;
	default:
		*s = pos;
		*e = size;
		return 1;
	}
	if (*s >= size)
		return 0;
	if (*e > size)
		*e = size;
	return 1;
}

/* Transforms the ranges of a class in place through fd, a chunk at a time:
 * read the chunk, XOR the ranges in it, write the whole chunk back. */
static int xform_chunks(struct job *j, int fd, enum vclass cls)
{
	const struct opts *o = j->c->o;
	uint64_t off = 0, s, e;
	uint8_t *buf = malloc(CHUNK);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (next_range(o, cls, j->size, off, &s, &e)) {
		uint64_t coff = s - s % CHUNK;
		uint64_t cend = coff + CHUNK < j->size ? coff + CHUNK : j->size;
		uint64_t pos = s;
		if ((r = pread_all(fd, buf, (size_t)(cend - coff), coff)) < 0)
			break;
		while (next_range(o, cls, j->size, pos, &s, &e) && s < cend) {
			if (e > cend)
				e = cend;
			ks_xor(j, buf + (s - coff), (size_t)(e - s), s);
			pos = e;
		}
		job_mark(j);
		if ((r = pwrite_all(fd, buf, (size_t)(cend - coff), coff)) < 0)
			break;
		off = cend;
	}
	free(buf);
	return r;
}

static int read_whole(struct job *j, uint8_t **out)
{
	uint8_t *buf;
	int r;

	if (j->size > WHOLE_MAX)
		return -EFBIG;
	if (!(buf = malloc(j->size ? (size_t)j->size : 1)))
		return -ENOMEM;
	if ((r = pread_all(j->fd, buf, (size_t)j->size, 0)) < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	return 0;
}

/* Reads the whole file, XORs it, writes it back at 0 (chunked when huge). */
static int enc_whole_fd(struct job *j)
{
	uint8_t *buf;
	int r;

	if (j->size > WHOLE_MAX)
		return xform_chunks(j, j->fd, VC_FULL);
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	job_mark(j);
	r = pwrite_all(j->fd, buf, (size_t)j->size, 0);
	free(buf);
	return r;
}

/* Writes n bytes to a new file name in pdir (O_EXCL, the original's mode). */
static int write_new(struct job *j, const char *name, const uint8_t *p, size_t n, int do_fsync)
{
	int fd, r;

	job_mark(j);
	fd = openat(j->pdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, j->mode & 07777);
	if (fd < 0)
		return -errno;
	r = write_all(fd, p, n);
	if (r == 0 && fchmod(fd, j->mode & 07777) < 0)
		r = -errno;
	if (r == 0 && do_fsync && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlinkat(j->pdir, name, 0);
	return r;
}

static int ext_name(const struct job *j, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s", j->base, j->c->o->ext);

	return n < 0 || (size_t)n >= cap || (size_t)n > NAME_MAX ? -ENAMETOOLONG : 0;
}

static int rename_ext(struct job *j)
{
	char name[NAME_MAX + 2];
	int r = ext_name(j, name, sizeof name);

	if (r < 0)
		return r;
	job_mark(j);
	return renameat2(j->pdir, j->base, j->pdir, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
}

/* A second descriptor opened by name must be the file the job checked. */
static int same_file(const struct job *j, int fd)
{
	struct xst a, b;
	int r = xstat(fd, "", &a);

	if (r == 0 && (r = check_file(j->c, &a)) == 0 && (r = xstat(j->fd, "", &b)) == 0)
		r = a.ino == b.ino && a.dev == b.dev ? 0 : -EAGAIN;
	return r;
}

/* ---- io_uring through raw syscalls --------------------------------------- */

struct uring {
	int fd;
	void *sq, *cq;
	size_t sq_len, cq_len, sqes_len;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
};

static void uring_free(struct uring *u)
{
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->cq && u->cq != u->sq)
		munmap(u->cq, u->cq_len);
	if (u->sq)
		munmap(u->sq, u->sq_len);
	if (u->fd >= 0)
		close(u->fd);
	memset(u, 0, sizeof *u);
	u->fd = -1;
}

static void *ring_map(struct uring *u, size_t len, uint64_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

static int uring_init(struct uring *u)
{
	struct io_uring_params p;
	int single, r;

	memset(u, 0, sizeof *u);
	memset(&p, 0, sizeof p);
	u->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (u->fd < 0)
		return -errno;
	single = !!(p.features & IORING_FEAT_SINGLE_MMAP);
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (single && u->cq_len > u->sq_len)
		u->sq_len = u->cq_len;
	if (!(u->sq = ring_map(u, u->sq_len, IORING_OFF_SQ_RING)))
		goto fail;
	u->cq = single ? u->sq : ring_map(u, u->cq_len, IORING_OFF_CQ_RING);
	if (!u->cq)
		goto fail;
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	if (!(u->sqes = ring_map(u, u->sqes_len, IORING_OFF_SQES)))
		goto fail;
	u->sq_head = (unsigned *)((char *)u->sq + p.sq_off.head);
	u->sq_tail = (unsigned *)((char *)u->sq + p.sq_off.tail);
	u->sq_mask = (unsigned *)((char *)u->sq + p.sq_off.ring_mask);
	u->sq_array = (unsigned *)((char *)u->sq + p.sq_off.array);
	u->cq_head = (unsigned *)((char *)u->cq + p.cq_off.head);
	u->cq_tail = (unsigned *)((char *)u->cq + p.cq_off.tail);
	u->cq_mask = (unsigned *)((char *)u->cq + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((char *)u->cq + p.cq_off.cqes);
	return 0;
fail:
	r = -errno;
	uring_free(u);
	return r;
}

/* One IORING_OP_WRITE, submitted and waited for; returns its result. */
static int uring_write(struct uring *u, int fd, const void *buf, unsigned len, uint64_t off)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask, submit = 1;
	struct io_uring_sqe *sqe = &u->sqes[idx];

	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = IORING_OP_WRITE;
	sqe->fd = fd;
	sqe->addr = (uint64_t)(uintptr_t)buf;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = 1;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	for (;;) {
		unsigned head = *u->cq_head;
		long n;
		if (head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
			int res = u->cqes[head & *u->cq_mask].res;
			__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
			return res;
		}
		n = syscall(__NR_io_uring_enter, u->fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		submit = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE) == tail + 1 ? 0 : 1;
	}
}

/* ---- the variants -------------------------------------------------------- */

static int v_inplace(struct job *j)
{
	return enc_whole_fd(j);
}

static int v_partial(struct job *j)
{
	return xform_chunks(j, j->fd, j->c->o->variant->cls);
}

static int v_newdelete(struct job *j)
{
	char name[NAME_MAX + 2];
	uint8_t *buf;
	int r;

	if ((r = ext_name(j, name, sizeof name)) < 0 || (r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	r = write_new(j, name, buf, (size_t)j->size, 1);
	free(buf);
	if (r == 0 && unlinkat(j->pdir, j->base, 0) < 0)
		r = -errno;
	return r;
}

static int v_renameover(struct job *j)
{
	char name[64];
	uint8_t *buf;
	int r;

	snprintf(name, sizeof name, TMP_PREFIX "%ld.%" PRIu64, (long)getpid(),
	         __atomic_fetch_add(&tmp_seq, 1, __ATOMIC_RELAXED));
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	r = write_new(j, name, buf, (size_t)j->size, 0);
	free(buf);
	if (r == 0 && renameat(j->pdir, name, j->pdir, j->base) < 0) {
		r = -errno;
		unlinkat(j->pdir, name, 0);
	}
	return r;
}

static int v_renamethenenc(struct job *j)
{
	int r = rename_ext(j);

	return r < 0 ? r : enc_whole_fd(j);
}

static int v_encthenrename(struct job *j)
{
	int r = enc_whole_fd(j);

	return r < 0 ? r : rename_ext(j);
}

static int v_otrunc(struct job *j)
{
	uint8_t *buf;
	int fd, r;

	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	job_mark(j);
	if (j->preopened) {
		/* the descriptor predates the attack: truncate through it */
		fd = j->fd;
		r = ftruncate(fd, 0) < 0 ? -errno : 0;
	} else {
		fd = openat(j->pdir, j->base, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		r = fd < 0 ? -errno : same_file(j, fd);
	}
	if (r == 0)
		r = pwrite_all(fd, buf, (size_t)j->size, 0);
	if (fd >= 0 && fd != j->fd)
		close(fd);
	free(buf);
	return r;
}

static int v_truncate(struct job *j)
{
	job_mark(j);
	return ftruncate(j->fd, 0) < 0 ? -errno : 0;
}

static int v_punchhole(struct job *j)
{
	job_mark(j);
	if (fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)j->size) == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOSYS) {
		j->t_first = 0;
		return R_SKIP;
	}
	return -errno;
}

static int v_mmap(struct job *j)
{
	uint8_t *p;
	int r = 0;

	p = mmap(NULL, (size_t)j->size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	job_mark(j);
	ks_xor(j, p, (size_t)j->size, 0);
	if (msync(p, (size_t)j->size, MS_SYNC) < 0)
		r = -errno;
	munmap(p, (size_t)j->size);
	return r;
}

/* O_DIRECT for the 4096-aligned part, a normal descriptor for the tail.
 * A preopened descriptor gets O_DIRECT with F_SETFL and loses it again. */
static int odirect_write(struct job *j, const uint8_t *buf, uint64_t alen)
{
	int fl = fcntl(j->fd, F_GETFL), dfd, r = 0;

	if (j->preopened) {
		dfd = j->fd;
		if (fcntl(dfd, F_SETFL, fl | O_DIRECT) < 0)
			return errno == EINVAL ? R_SKIP : -errno;
	} else {
		dfd = openat(j->pdir, j->base, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (dfd < 0)
			return errno == EINVAL ? R_SKIP : -errno;
		r = same_file(j, dfd);
	}
	for (uint64_t off = 0; r == 0 && off < alen;) {
		size_t n = alen - off < CHUNK ? (size_t)(alen - off) : CHUNK;
		ssize_t w;
		job_mark(j);
		w = pwrite(dfd, buf + off, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			r = errno == EINVAL && off == 0 ? (j->t_first = 0, R_SKIP) : -errno;
		else if (w == 0 || w % 4096)
			r = -EIO;
		else
			off += (uint64_t)w;
	}
	if (j->preopened)
		fcntl(dfd, F_SETFL, fl);
	else
		close(dfd);
	return r;
}

static int v_odirect(struct job *j)
{
	uint64_t alen = j->size & ~(uint64_t)4095, cap = (j->size + 4095) & ~(uint64_t)4095;
	void *mem = NULL;
	uint8_t *buf;
	int r;

	if (j->size > WHOLE_MAX)
		return -EFBIG;
	if (posix_memalign(&mem, 4096, (size_t)cap) != 0)
		return -ENOMEM;
	buf = mem;
	r = pread_all(j->fd, buf, (size_t)j->size, 0);
	if (r == 0) {
		ks_xor(j, buf, (size_t)j->size, 0);
		if (alen)
			r = odirect_write(j, buf, alen);
	}
	if (r == 0 && j->size > alen) {
		job_mark(j);
		r = pwrite_all(j->fd, buf + alen, (size_t)(j->size - alen), alen);
	}
	free(mem);
	return r;
}

static int v_iouring(struct job *j)
{
	struct uring u;
	uint8_t *buf;
	int r;

	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	if ((r = uring_init(&u)) < 0) {
		free(buf);
		return r == -ENOSYS || r == -EPERM ? R_SKIP : r;
	}
	for (uint64_t off = 0; off < j->size;) {
		size_t n = j->size - off < CHUNK ? (size_t)(j->size - off) : CHUNK;
		int w;
		job_mark(j);
		w = uring_write(&u, j->fd, buf + off, (unsigned)n, off);
		if (w == -EINTR || w == -EAGAIN)
			continue;
		if (w <= 0) {
			r = w < 0 ? w : -EIO;
			break;
		}
		off += (uint64_t)w;
	}
	uring_free(&u);
	free(buf);
	return r;
}

static int v_b64(struct job *j)
{
	uint8_t *buf;
	char *txt;
	size_t rest, tlen;
	int r;

	if (j->size <= B64_KEEP)
		return 0; /* nothing past the magic */
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	rest = (size_t)j->size - B64_KEEP;
	ks_xor(j, buf + B64_KEEP, rest, B64_KEEP);
	tlen = sodium_base64_encoded_len(rest, sodium_base64_VARIANT_ORIGINAL);
	if (!(txt = malloc(tlen))) {
		free(buf);
		return -ENOMEM;
	}
	sodium_bin2base64(txt, tlen, buf + B64_KEEP, rest, sodium_base64_VARIANT_ORIGINAL);
	job_mark(j);
	r = pwrite_all(j->fd, txt, tlen - 1, B64_KEEP);
	free(txt);
	free(buf);
	return r;
}

static const struct variant variants[] = {
	{"inplace", v_inplace, VC_FULL, O_RDWR, 0,
	 "read whole file, pwrite ciphertext over it at 0"},
	{"newdelete", v_newdelete, VC_FULL, O_RDONLY, 1,
	 "ciphertext to new NAME+ext (fsync), unlink NAME"},
	{"renameover", v_renameover, VC_FULL, O_RDONLY, 0,
	 "ciphertext to a temp name, rename it over NAME"},
	{"renamethenenc", v_renamethenenc, VC_FULL, O_RDWR, 1,
	 "rename NAME to NAME+ext, then encrypt it in place"},
	{"encthenrename", v_encthenrename, VC_FULL, O_RDWR, 1,
	 "encrypt in place, then rename NAME to NAME+ext"},
	{"otrunc", v_otrunc, VC_FULL, O_RDONLY, 0,
	 "read, open(O_WRONLY|O_TRUNC), write ciphertext"},
	{"truncate", v_truncate, VC_WIPE, O_RDWR, 0, "wiper: ftruncate to 0 bytes"},
	{"punchhole", v_punchhole, VC_WIPE, O_RDWR, 0,
	 "wiper: fallocate PUNCH_HOLE|KEEP_SIZE, whole file"},
	{"header", v_partial, VC_HEADER, O_RDWR, 0, "encrypt only the first 4096 bytes"},
	{"stripes16", v_partial, VC_STRIPES, O_RDWR, 0,
	 "encrypt every other 16 bytes (0-15 of each 32)"},
	{"nofm", v_partial, VC_NOFM, O_RDWR, 0,
	 "encrypt --n of every --m 64 KiB blocks (1 of 4)"},
	{"percent", v_partial, VC_PERCENT, O_RDWR, 0,
	 "encrypt first --percent % (4), at least 4096 B"},
	{"mmap", v_mmap, VC_FULL, O_RDWR, 0, "mmap MAP_SHARED, encrypt in memory, msync, munmap"},
	{"odirect", v_odirect, VC_FULL, O_RDWR, 0,
	 "O_DIRECT aligned writes, tail via a normal fd"},
	{"iouring", v_iouring, VC_FULL, O_RDWR, 0,
	 "IORING_OP_WRITE, raw io_uring syscalls (or 77)"},
	{"b64", v_b64, VC_B64, O_RDWR, 0,
	 "keep 16 bytes, rest becomes base64(ciphertext)"},
};

static const struct variant *find_variant(const char *name)
{
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
		if (!strcmp(variants[i].name, name))
			return &variants[i];
	return NULL;
}

/* ---- the tree walk ------------------------------------------------------- */

struct walk {
	struct ctx *c;
	struct tlist *t, *bak; /* bak: backups to delete first, or NULL */
	struct slist *dirs;    /* visited directories, "" for ROOT */
	enum walk_kind kind;
};

static int wanted(struct walk *w, const char *name, const struct xst *st)
{
	const struct opts *o = w->c->o;
	int locked = o->ext[0] && has_suffix(name, o->ext);

	if (check_file(w->c, st) < 0 || !strcmp(name, MARKER_NAME) || !strcmp(name, NOTE_NAME) ||
	    !strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)))
		return 0;
	switch (w->kind) {
	case W_ATTACK:
		return !locked && st->size >= o->min_size && st->size <= o->max_size;
	case W_SUFFIX:
		return locked;
	default:
		return 1;
	}
}

static int walk_dir(struct walk *w, int dfd, const char *rel, unsigned depth);

static int walk_entry(struct walk *w, int dfd, const char *rel, const char *name, unsigned depth)
{
	struct xst st, st2;
	char *child;
	int sfd, r = 0;

	if (xstat(dfd, name, &st) < 0 || S_ISLNK(st.mode) || !in_root_fs(w->c, &st))
		return 0; /* vanished, a symlink, or another mount */
	if (!(child = join(rel, name)))
		return -ENOMEM;
	if (S_ISDIR(st.mode)) {
		if (depth >= MAX_DEPTH)
			goto skip;
		sfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			goto skip;
		if (xstat(sfd, "", &st2) < 0 || st2.ino != st.ino || !in_root_fs(w->c, &st2)) {
			close(sfd);
			goto skip;
		}
		r = walk_dir(w, sfd, child, depth + 1);
		goto skip;
	}
	if (w->bak && S_ISREG(st.mode) && is_backup_name(name) && check_file(w->c, &st) == 0)
		return tlist_push(w->bak, child, st.size, depth);
	if (wanted(w, name, &st))
		return tlist_push(w->t, child, st.size, depth);
skip:
	free(child);
	return r;
}

/* Takes ownership of dfd. */
static int walk_dir(struct walk *w, int dfd, const char *rel, unsigned depth)
{
	struct slist names = {0};
	struct dirent *de;
	DIR *d = fdopendir(dfd);
	int r;

	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	if ((r = slist_push(w->dirs, rel)) < 0)
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((r = slist_push(&names, de->d_name)) < 0)
			goto out;
	}
	qsort(names.v, names.n, sizeof names.v[0], cmp_str);
	for (size_t i = 0; i < names.n && r == 0; i++)
		r = walk_entry(w, dirfd(d), rel, names.v[i], depth);
out:
	slist_free(&names);
	closedir(d);
	return r;
}

static int walk_tree(struct walk *w)
{
	int fd = fcntl(w->c->rootfd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	return walk_dir(w, fd, "", 0);
}

/* Adds one named file (--only, --child-files) through the same checks. */
static int add_named(struct ctx *c, struct tlist *t, const char *rel)
{
	struct walk w = {c, t, NULL, NULL, W_ATTACK};
	const char *base;
	struct xst st;
	char *dup;
	int pdir, r;

	if ((pdir = open_parent(c, rel, &base)) < 0) {
		errmsg("%s: %s", rel, pdir == -ENOTDIR ? "a directory on the way is a symlink or not a directory" : why(pdir));
		return pdir;
	}
	r = xstat(pdir, base, &st);
	close(pdir);
	if (r == 0)
		r = S_ISLNK(st.mode) ? -ELOOP : check_file(c, &st);
	if (r == 0 && (!strcmp(base, MARKER_NAME) || !strcmp(base, NOTE_NAME)))
		r = E_MARKER;
	if (r < 0) {
		errmsg("%s: %s", rel, why(r));
		return r;
	}
	if (!wanted(&w, base, &st)) /* size range, or already has the suffix */
		return 0;
	if (!(dup = strdup(rel)))
		return -ENOMEM;
	return tlist_push(t, dup, st.size, 0);
}

static int cmp_depth(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_size(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void apply_order(struct tlist *t, enum order ord)
{
	switch (ord) {
	case ORD_BFS:
		qsort(t->v, t->n, sizeof t->v[0], cmp_depth);
		break;
	case ORD_SIZE:
		qsort(t->v, t->n, sizeof t->v[0], cmp_size);
		break;
	case ORD_REVERSE:
		for (size_t i = 0; i < t->n / 2; i++) {
			struct target x = t->v[i];
			t->v[i] = t->v[t->n - 1 - i];
			t->v[t->n - 1 - i] = x;
		}
		break;
	case ORD_RANDOM:
		for (size_t i = t->n; i > 1; i--) {
			size_t k = (size_t)(prng_next() % i);
			struct target x = t->v[i - 1];
			t->v[i - 1] = t->v[k];
			t->v[k] = x;
		}
		break;
	default:
		break;
	}
}

/* ---- one file ------------------------------------------------------------ */

static void drop_note(int dfd)
{
	static const char note[] =
		NOTE_MAGIC "\n"
		"THIS IS A TEST.  The files in this directory were encrypted by bw-ransim,\n"
		"the bulwark ransomware emulator, to test `bulwark guard`.  Nothing was\n"
		"sent anywhere.  Restore:  bw-ransim decrypt ROOT --variant VARIANT\n";
	int fd = openat(dfd, NOTE_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0)
		return; /* EEXIST: another worker was first */
	if (write_all(fd, note, sizeof note - 1) < 0)
		errmsg("%s: %s", NOTE_NAME, strerror(errno));
	close(fd);
}

static void count(struct ctx *c, int r, uint64_t bytes)
{
	if (r == 0) {
		__atomic_fetch_add(&c->cnt->files, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->cnt->bytes, bytes, __ATOMIC_RELAXED);
	} else if (r == R_SKIP) {
		__atomic_store_n(&c->cnt->skip, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&c->cnt->errors, 1, __ATOMIC_RELAXED);
	}
}

static int skipping(const struct ctx *c)
{
	return __atomic_load_n(&c->cnt->skip, __ATOMIC_RELAXED);
}

static int attack_one(struct ctx *c, struct target *t)
{
	const struct variant *v = c->o->variant;
	struct job j = {.c = c, .rel = t->rel, .pdir = -1, .fd = -1};
	struct xst st;
	int r;

	if (skipping(c))
		return R_SKIP;
	if ((j.pdir = open_parent(c, t->rel, &j.base)) < 0) {
		r = j.pdir;
		goto out;
	}
	if (c->o->note)
		drop_note(j.pdir);
	if (t->fd >= 0) {
		j.fd = t->fd;
		t->fd = -1;
		j.preopened = 1;
		r = xstat(j.fd, "", &st);
		if (r == 0)
			r = check_file(c, &st);
	} else {
		j.fd = open_target(c, j.pdir, j.base, v->oflags, &st);
		r = j.fd < 0 ? j.fd : 0;
	}
	if (r < 0)
		goto out;
	j.size = st.size;
	j.mode = st.mode;
	nonce_for(t->rel, j.nonce);
	if (j.size && (r = v->fn(&j)) == 0)
		log_file(c, j.t_first ? j.t_first : now_ns(), now_ns(), t->rel);
out:
	if (r < 0 && r != R_SKIP)
		errmsg("attack %s: %s: %s", v->name, t->rel, why(r));
	if (r == R_SKIP)
		errmsg("attack %s: %s: not supported on this filesystem or kernel: skipping (exit 77)",
		       v->name, t->rel);
	count(c, r, j.size);
	if (j.fd >= 0)
		close(j.fd);
	if (j.pdir >= 0)
		close(j.pdir);
	return r;
}

static void delete_backups(struct ctx *c, struct tlist *bak)
{
	for (size_t i = 0; i < bak->n; i++) {
		const char *base;
		struct xst st;
		int64_t t0;
		int pdir = open_parent(c, bak->v[i].rel, &base), r;

		r = pdir < 0 ? pdir : xstat(pdir, base, &st);
		if (r == 0)
			r = S_ISLNK(st.mode) ? -ELOOP : check_file(c, &st);
		if (r == -EMLINK)
			r = 0; /* unlinking one name cannot hurt another */
		t0 = now_ns();
		if (r == 0 && unlinkat(pdir, base, 0) < 0)
			r = -errno;
		if (r == 0) {
			log_file(c, t0, now_ns(), bak->v[i].rel);
			__atomic_fetch_add(&c->cnt->deleted, 1, __ATOMIC_RELAXED);
		} else {
			errmsg("delete backup %s: %s", bak->v[i].rel, why(r));
			__atomic_fetch_add(&c->cnt->errors, 1, __ATOMIC_RELAXED);
		}
		if (pdir >= 0)
			close(pdir);
	}
}

/* ---- workers ------------------------------------------------------------- */

struct thr {
	struct ctx *c;
	struct tlist *t;
	size_t next;
};

static void *thread_main(void *arg)
{
	struct thr *th = arg;
	int first = 1;

	for (;;) {
		size_t i = __atomic_fetch_add(&th->next, 1, __ATOMIC_RELAXED);
		if (i >= th->t->n || skipping(th->c))
			break;
		if (!first && th->c->o->delay_ms)
			sleep_ms(th->c->o->delay_ms);
		first = 0;
		attack_one(th->c, &th->t->v[i]);
	}
	return NULL;
}

static void run_threads(struct ctx *c, struct tlist *t)
{
	struct thr th = {c, t, 0};
	pthread_t *tid = calloc(c->o->workers, sizeof *tid);
	unsigned started = 0;

	if (!tid) {
		errmsg("out of memory");
		count(c, -EIO, 0);
		return;
	}
	for (; started < c->o->workers; started++)
		if (pthread_create(&tid[started], NULL, thread_main, &th) != 0)
			break;
	if (!started)
		thread_main(&th);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
}

/* Waits for one child; a child killed by a signal counts as an error. */
static pid_t reap(struct ctx *c)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, 0)) < 0 && errno == EINTR)
		;
	if (pid > 0 && WIFSIGNALED(status)) {
		errmsg("worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
		__atomic_fetch_add(&c->cnt->errors, 1, __ATOMIC_RELAXED);
	} else if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == RC_SKIP) {
		__atomic_store_n(&c->cnt->skip, 1, __ATOMIC_RELAXED);
	} else if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) > RC_ERR) {
		/* 0 and 1: the child counted its own files and errors */
		errmsg("worker %ld exited with status %d", (long)pid, WEXITSTATUS(status));
		count(c, -EIO, 0);
	}
	return pid;
}

static void run_fork(struct ctx *c, struct tlist *t)
{
	unsigned running = 0;

	for (size_t i = 0; i < t->n && !skipping(c); i++) {
		pid_t pid;
		while (running >= c->o->workers && reap(c) > 0)
			running--;
		if (i && c->o->delay_ms)
			sleep_ms(c->o->delay_ms);
		if ((pid = fork()) < 0) {
			errmsg("fork: %s", strerror(errno));
			count(c, -EIO, 0);
			break;
		}
		if (pid == 0) {
			int r = attack_one(c, &t->v[i]);
			_exit(r == R_SKIP ? RC_SKIP : r < 0 ? RC_ERR : RC_OK);
		}
		if (t->v[i].fd >= 0) { /* the child has it now */
			close(t->v[i].fd);
			t->v[i].fd = -1;
		}
		running++;
	}
	while (running && reap(c) > 0)
		running--;
}

static void pool_worker(struct ctx *c, struct tlist *t, int rfd)
{
	uint32_t idx;
	int first = 1;

	while (read(rfd, &idx, sizeof idx) == (ssize_t)sizeof idx) {
		if (idx >= t->n)
			break;
		if (!first && c->o->delay_ms)
			sleep_ms(c->o->delay_ms);
		first = 0;
		attack_one(c, &t->v[idx]);
	}
	_exit(skipping(c) ? RC_SKIP : RC_OK);
}

static void run_pool(struct ctx *c, struct tlist *t)
{
	unsigned running = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		errmsg("pipe: %s", strerror(errno));
		count(c, -EIO, 0);
		return;
	}
	for (unsigned w = 0; w < c->o->workers; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(p[1]);
			pool_worker(c, t, p[0]);
		}
		if (pid < 0) {
			errmsg("fork: %s", strerror(errno));
			break;
		}
		running++;
	}
	close(p[0]);
	for (uint32_t i = 0; running && i < t->n && !skipping(c); i++)
		if (write_all(p[1], &i, sizeof i) < 0)
			break; /* every worker is gone */
	close(p[1]);
	while (running && reap(c) > 0)
		running--;
}

struct argv_b {
	char *v[64];
	int n, nn;
	char num[16][24];
	char keyhex[65];
};

static void av_push(struct argv_b *a, const char *s)
{
	if (a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1) {
		a->v[a->n++] = (char *)s;
		a->v[a->n] = NULL;
	}
}

static void av_num(struct argv_b *a, uint64_t x)
{
	snprintf(a->num[a->nn], sizeof a->num[0], "%" PRIu64, x);
	av_push(a, a->num[a->nn++]);
}

/* The command line of a child bw-ransim that attacks files with the same
 * variant, key and resolved extension. */
static void child_argv(struct ctx *c, struct argv_b *a, int with_delay)
{
	const struct opts *o = c->o;

	memset(a, 0, sizeof *a);
	av_push(a, c->exe);
	av_push(a, "attack");
	av_push(a, c->real);
	av_push(a, "--variant");
	av_push(a, o->variant->name);
	bw_hex_encode(o->key, sizeof o->key, a->keyhex);
	av_push(a, "--key");
	av_push(a, a->keyhex);
	av_push(a, "--ext");
	av_push(a, o->ext[0] ? o->ext : "none");
	av_push(a, "--n");
	av_num(a, o->n);
	av_push(a, "--m");
	av_num(a, o->m);
	av_push(a, "--percent");
	av_num(a, o->percent);
	av_push(a, "--min-size");
	av_num(a, o->min_size);
	av_push(a, "--max-size");
	av_num(a, o->max_size);
	if (with_delay && o->delay_ms) {
		av_push(a, "--delay-ms");
		av_num(a, o->delay_ms);
	}
	if (c->logfd >= 0) {
		av_push(a, "--log");
		av_push(a, c->logpath);
	}
	if (o->note)
		av_push(a, "--note");
	av_push(a, "--internal-child");
}

struct relay {
	pid_t pid;
	int rep;
};

static void relay_collect(struct ctx *c, struct relay *rl)
{
	char buf[128] = {0};
	uint64_t f = 0, b = 0, e = 0;
	ssize_t n = read(rl->rep, buf, sizeof buf - 1);

	if (n > 0 && sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64, &f, &b, &e) == 3) {
		__atomic_fetch_add(&c->cnt->files, f, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->cnt->bytes, b, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->cnt->errors, e, __ATOMIC_RELAXED);
	} else if (!skipping(c)) {
		errmsg("worker %ld ended without a report: its files may not be done", (long)rl->pid);
		count(c, -EIO, 0);
	}
	close(rl->rep);
	rl->pid = 0;
}

static pid_t relay_start(struct ctx *c, struct tlist *t, size_t from, size_t to, int *rep)
{
	struct argv_b a;
	int lp[2], rp[2];
	pid_t pid;

	if (pipe2(lp, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(rp, O_CLOEXEC) < 0) {
		close(lp[0]);
		close(lp[1]);
		return -1;
	}
	child_argv(c, &a, 1);
	av_push(&a, "--child-files");
	av_num(&a, (uint64_t)lp[0]);
	av_push(&a, "--child-report");
	av_num(&a, (uint64_t)rp[1]);
	if ((pid = fork()) == 0) {
		fcntl(lp[0], F_SETFD, 0);
		fcntl(rp[1], F_SETFD, 0);
		execv("/proc/self/exe", a.v);
		errmsg("exec /proc/self/exe: %s", strerror(errno));
		_exit(127);
	}
	close(lp[0]);
	close(rp[1]);
	for (size_t i = from; pid > 0 && i < to; i++)
		if (write_all(lp[1], t->v[i].rel, strlen(t->v[i].rel) + 1) < 0)
			break;
	close(lp[1]);
	if (pid < 0)
		close(rp[0]);
	*rep = rp[0];
	return pid;
}

/* Each batch of files goes to a fresh exec of this program. */
static void run_execrelay(struct ctx *c, struct tlist *t)
{
	unsigned nw = c->o->workers;
	struct relay *rl = calloc(nw, sizeof *rl);
	size_t from = 0;
	unsigned running = 0;

	if (!rl) {
		count(c, -EIO, 0);
		return;
	}
	while ((from < t->n && !skipping(c)) || running) {
		if (from < t->n && running < nw && !skipping(c)) {
			size_t to = from + c->o->batch < t->n ? from + c->o->batch : t->n;
			unsigned k = 0;
			int rep;
			pid_t pid;
			while (rl[k].pid)
				k++;
			if (from && c->o->delay_ms)
				sleep_ms(c->o->delay_ms);
			if ((pid = relay_start(c, t, from, to, &rep)) < 0) {
				errmsg("fork: %s", strerror(errno));
				count(c, -EIO, 0);
				from = t->n;
				continue;
			}
			rl[k] = (struct relay){pid, rep};
			running++;
			from = to;
			continue;
		}
		pid_t pid = reap(c);
		if (pid <= 0)
			break;
		for (unsigned k = 0; k < nw; k++)
			if (rl[k].pid == pid) {
				relay_collect(c, &rl[k]);
				running--;
			}
	}
	free(rl);
}

static void run_seq(struct ctx *c, struct tlist *t)
{
	for (size_t i = 0; i < t->n && !skipping(c); i++) {
		if (i && c->o->delay_ms)
			sleep_ms(c->o->delay_ms);
		attack_one(c, &t->v[i]);
	}
}

/* ---- --script: a /bin/sh parent that runs one bw-ransim per file --------- */

static int sq(struct bw_buf *b, const char *s)
{
	int r = bw_buf_put_u8(b, '\'');

	for (; *s && r == 0; s++)
		r = *s == '\'' ? bw_buf_append(b, "'\\''", 4) : bw_buf_put_u8(b, (uint8_t)*s);
	return r ? r : bw_buf_put_u8(b, '\'');
}

static int script_text(struct ctx *c, struct tlist *t, const char *dir, struct bw_buf *b)
{
	struct argv_b a;
	int r;

	child_argv(c, &a, 0);
	r = bw_buf_printf(b, "#!/bin/sh\n# Generated by bw-ransim --script: one encryptor process per file.\n"
	                     "# It deletes itself when it ends.\nd=");
	if (!r)
		r = sq(b, dir);
	if (!r)
		r = bw_buf_printf(b, "\ntrap 'rm -f \"$d/run.sh\"; rmdir \"$d\"' EXIT\n"
		                     "trap 'exit 130' INT\ntrap 'exit 143' TERM\nn=0\nrc=0\nrun() {\n\t");
	for (int i = 0; i < a.n && !r; i++)
		if (!(r = sq(b, a.v[i])))
			r = bw_buf_put_u8(b, ' ');
	if (!r)
		r = bw_buf_printf(b, "--only \"$1\"\n\ts=$?\n\tcase $s in\n\t0) n=$((n + 1)) ;;\n"
		                     "\t77) exit 77 ;;\n\t*) rc=1 ;;\n\tesac\n}\n");
	for (size_t i = 0; i < t->n && !r; i++) {
		if (i && c->o->delay_ms)
			r = bw_buf_printf(b, "sleep %" PRIu64 ".%03" PRIu64 "\n", c->o->delay_ms / 1000,
			                  c->o->delay_ms % 1000);
		if (!r)
			r = bw_buf_printf(b, "run ");
		if (!r)
			r = sq(b, t->v[i].rel);
		if (!r)
			r = bw_buf_put_u8(b, '\n');
	}
	if (!r && !c->o->quiet)
		r = bw_buf_printf(b, "echo \"bw-ransim: attack %s (script): $n files\"\n", c->o->variant->name);
	if (!r)
		r = bw_buf_printf(b, "exit $rc\n");
	return r;
}

/* Replaces this process by /bin/sh running the generated script; returns
 * only on failure. */
static int run_script(struct ctx *c, struct tlist *t)
{
	char dir[] = "/tmp/bw-ransim-sh.XXXXXX", path[64], real[PATH_MAX];
	size_t rl = strlen(c->real);
	struct bw_buf b;
	int fd, r;

	if (!mkdtemp(dir)) {
		errmsg("mkdtemp %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!realpath(dir, real) || (!strncmp(real, c->real, rl) && (real[rl] == '/' || !real[rl]))) {
		errmsg("%s: the script directory would be inside ROOT: refusing", dir);
		rmdir(dir);
		return -1;
	}
	snprintf(path, sizeof path, "%s/run.sh", dir);
	bw_buf_init(&b, (size_t)256 << 20);
	r = script_text(c, t, dir, &b);
	fd = r ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (fd < 0 || write_all(fd, b.data, b.len) < 0 || close(fd) < 0) {
		errmsg("%s: %s", path, r ? bw_strerror(r) : strerror(errno));
		bw_buf_release(&b);
		unlink(path);
		rmdir(dir);
		return -1;
	}
	bw_buf_release(&b);
	fflush(NULL);
	execl("/bin/sh", "sh", path, (char *)NULL);
	errmsg("exec /bin/sh: %s", strerror(errno));
	unlink(path);
	rmdir(dir);
	return -1;
}

/* ---- --preopen ----------------------------------------------------------- */

static int preopen_all(struct ctx *c, struct tlist *t)
{
	struct rlimit rl;
	sigset_t set;
	size_t ok = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < t->n; i++) {
		const char *base;
		struct xst st;
		int pdir = open_parent(c, t->v[i].rel, &base), fd;
		fd = pdir < 0 ? pdir : open_target(c, pdir, base, O_RDWR, &st);
		if (pdir >= 0)
			close(pdir);
		if (fd < 0) {
			errmsg("preopen %s: %s", t->v[i].rel, why(fd));
			continue;
		}
		t->v[i].fd = fd;
		ok++;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (!c->o->quiet)
		errmsg("preopened %zu files; waiting for SIGUSR1 to pid %ld%s", ok, (long)getpid(),
		       c->o->preopen_wait_ms ? " (or the timeout)" : "");
	if (c->o->preopen_wait_ms) {
		struct timespec ts = {(time_t)(c->o->preopen_wait_ms / 1000),
		                      (long)(c->o->preopen_wait_ms % 1000) * 1000000L};
		while (sigtimedwait(&set, NULL, &ts) < 0 && errno == EINTR)
			;
	} else {
		while (sigwaitinfo(&set, NULL) < 0 && errno == EINTR)
			;
	}
	return 0;
}

/* ---- attack -------------------------------------------------------------- */

static int read_child_files(struct ctx *c, struct tlist *t, int fd)
{
	struct bw_buf b;
	uint8_t tmp[65536];
	ssize_t n;
	int r = 0;

	bw_buf_init(&b, (size_t)256 << 20);
	while ((n = read(fd, tmp, sizeof tmp)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (r = bw_buf_append(&b, tmp, (size_t)n)) < 0) {
			r = -EIO;
			break;
		}
	}
	close(fd);
	for (size_t i = 0, s = 0; r == 0 && i < b.len; i++)
		if (b.data[i] == 0) {
			if ((r = add_named(c, t, (const char *)b.data + s)) < 0 && r != -ENOMEM) {
				count(c, -EIO, 0);
				r = 0;
			}
			s = i + 1;
		}
	bw_buf_release(&b);
	return r;
}

static int collect(struct ctx *c, struct tlist *t, struct tlist *bak, struct slist *dirs)
{
	const struct opts *o = c->o;
	struct walk w = {c, t, o->delbak ? bak : NULL, dirs, W_ATTACK};
	int r;

	if (o->child_files >= 0)
		return read_child_files(c, t, o->child_files);
	if (o->only && (r = add_named(c, t, o->only)) < 0 && r != -ENOMEM) {
		count(c, -EIO, 0);
		return 0;
	}
	if (o->only)
		return r;
	if ((r = walk_tree(&w)) < 0)
		errmsg("%s: walk: %s", c->real, why(r));
	return r;
}

static int iouring_probe(void)
{
	struct uring u;
	int r = uring_init(&u);

	if (r == -ENOSYS || r == -EPERM) {
		errmsg("io_uring is not available here (io_uring_setup: %s; see "
		       "/proc/sys/kernel/io_uring_disabled or the seccomp policy): skipping",
		       strerror(-r));
		return RC_SKIP;
	}
	if (r < 0) {
		errmsg("io_uring_setup: %s", strerror(-r));
		return RC_ERR;
	}
	uring_free(&u);
	return RC_OK;
}

static void summary(struct ctx *c, const char *what)
{
	const struct counters *k = c->cnt;
	const struct opts *o = c->o;

	if (o->internal && o->child_report >= 0) {
		char line[96];
		int n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", k->files,
		                 k->bytes, k->errors);
		if (write_all(o->child_report, line, (size_t)n) < 0)
			errmsg("child report: %s", strerror(errno));
	}
	if (o->quiet || o->internal)
		return;
	printf("bw-ransim: %s %s: %" PRIu64 " files, %" PRIu64 " bytes", what, o->variant->name,
	       k->files, k->bytes);
	if (k->deleted)
		printf(", %" PRIu64 " backups deleted", k->deleted);
	if (k->errors)
		printf(", %" PRIu64 " errors", k->errors);
	if (o->variant->renames && o->cmd == CMD_ATTACK)
		printf(", ext %s", o->ext);
	printf("\n");
	fflush(stdout);
}

static int cmd_attack(struct ctx *c)
{
	struct opts *o = c->o;
	struct tlist t = {0}, bak = {0};
	struct slist dirs = {0};
	int rc = RC_ERR;

	if (o->variant->fn == v_iouring && (rc = iouring_probe()) != RC_OK)
		return rc;
	rc = RC_ERR;
	if (o->log && open_log(c, o->log, !o->internal) < 0)
		return RC_ERR;
	if (!o->internal && c->logfd >= 0) {
		char line[40];
		int n = snprintf(line, sizeof line, "start %" PRId64 "\n", now_ns());
		if (write_all(c->logfd, line, (size_t)n) < 0)
			errmsg("log: %s", strerror(errno));
	}
	if (collect(c, &t, &bak, &dirs) < 0)
		goto out;
	if (o->delbak)
		delete_backups(c, &bak);
	apply_order(&t, o->order);
	for (size_t i = o->max_files; i < t.n; i++)
		free(t.v[i].rel);
	if (o->max_files < t.n)
		t.n = (size_t)o->max_files;
	if (o->script) {
		run_script(c, &t);
		goto out; /* only reached when the exec failed */
	}
	if (o->preopen)
		preopen_all(c, &t);
	switch (o->mode) {
	case M_FORK: run_fork(c, &t); break;
	case M_THREADS: run_threads(c, &t); break;
	case M_POOL: run_pool(c, &t); break;
	case M_EXECRELAY: run_execrelay(c, &t); break;
	default: run_seq(c, &t); break;
	}
	if (o->note && !o->internal)
		for (size_t i = 0; i < dirs.n; i++) {
			int dfd = open_dir(c, dirs.v[i]);
			if (dfd >= 0) {
				drop_note(dfd);
				close(dfd);
			}
		}
	summary(c, "attack");
	rc = c->cnt->skip ? RC_SKIP : c->cnt->errors ? RC_ERR : RC_OK;
out:
	tlist_free(&t);
	tlist_free(&bak);
	slist_free(&dirs);
	return rc;
}

/* ---- decrypt ------------------------------------------------------------- */

static int b64_undo(struct job *j)
{
	uint8_t *buf, *bin;
	size_t tlen, blen = 0;
	int r;

	if (j->size <= B64_KEEP)
		return 0;
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	tlen = (size_t)j->size - B64_KEEP;
	if (!(bin = malloc(tlen))) {
		free(buf);
		return -ENOMEM;
	}
	r = sodium_base642bin(bin, tlen, (const char *)buf + B64_KEEP, tlen, NULL, &blen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) ? E_B64 : 0;
	if (r == 0) {
		ks_xor(j, bin, blen, B64_KEEP);
		r = pwrite_all(j->fd, bin, blen, B64_KEEP);
	}
	if (r == 0 && ftruncate(j->fd, (off_t)(B64_KEEP + blen)) < 0)
		r = -errno;
	free(bin);
	free(buf);
	return r;
}

/* cur: the name on disk; orig: the name before the attack (nonce, final). */
static int decrypt_one(struct ctx *c, const char *cur, const char *orig)
{
	const struct variant *v = c->o->variant;
	struct job j = {.c = c, .rel = orig, .pdir = -1, .fd = -1};
	const char *obase = strrchr(orig, '/');
	struct xst st;
	int r;

	obase = obase ? obase + 1 : orig;
	if ((j.pdir = open_parent(c, cur, &j.base)) < 0) {
		r = j.pdir;
		goto out;
	}
	if ((j.fd = open_target(c, j.pdir, j.base, O_RDWR, &st)) < 0) {
		r = j.fd;
		goto out;
	}
	j.size = st.size;
	nonce_for(orig, j.nonce);
	r = v->cls == VC_B64 ? b64_undo(&j) : xform_chunks(&j, j.fd, v->cls);
	if (r == 0 && v->renames && renameat2(j.pdir, j.base, j.pdir, obase, RENAME_NOREPLACE) < 0)
		r = -errno;
out:
	if (r < 0)
		errmsg("decrypt %s: %s: %s", v->name, cur, why(r));
	count(c, r, j.size);
	if (j.fd >= 0)
		close(j.fd);
	if (j.pdir >= 0)
		close(j.pdir);
	return r;
}

/* The files a log says were done ("start" and unparsable lines skipped),
 * sorted, each once. */
static int log_files(const char *path, struct slist *out)
{
	struct bw_buf b;
	char *line, *nl;
	int r;

	bw_buf_init(&b, (size_t)256 << 20);
	if ((r = bw_file_read(path, (size_t)256 << 20, &b)) < 0) {
		errmsg("--from-log %s: %s", path, bw_strerror(r));
		bw_buf_release(&b);
		return -1;
	}
	bw_buf_cstr(&b); /* NUL after the data */
	for (line = (char *)b.data; line && *line && r == 0; line = nl) {
		char *p = line, *q;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = 0;
		size_t k = 0;
		for (int f = 0; f < 2 && p; f++) {
			strtoll(p, &q, 10);
			p = q != p && *q == ' ' ? q + 1 : NULL;
		}
		if (!p || !*p)
			continue;
		for (q = p; *q; q++, k++) { /* unescape in place */
			if (*q == '\\' && q[1]) {
				q++;
				p[k] = *q == 'n' ? '\n' : *q == 'r' ? '\r' : *q;
			} else {
				p[k] = *q;
			}
		}
		p[k] = 0;
		r = slist_push(out, p);
	}
	bw_buf_release(&b);
	qsort(out->v, out->n, sizeof out->v[0], cmp_str);
	for (size_t i = 1, w = 1; i <= out->n; i++) {
		if (i == out->n) {
			out->n = out->n ? w : 0;
			break;
		}
		if (strcmp(out->v[i], out->v[w - 1]))
			out->v[w++] = out->v[i];
		else
			free(out->v[i]);
	}
	return r;
}

static void remove_notes(struct ctx *c, struct slist *dirs)
{
	for (size_t i = 0; i < dirs->n; i++) {
		char head[sizeof NOTE_MAGIC];
		int dfd = open_dir(c, dirs->v[i]), fd;
		if (dfd < 0)
			continue;
		fd = openat(dfd, NOTE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			ssize_t n = read(fd, head, sizeof head - 1);
			close(fd);
			if (n == (ssize_t)sizeof head - 1 && !memcmp(head, NOTE_MAGIC, sizeof head - 1))
				unlinkat(dfd, NOTE_NAME, 0);
		}
		close(dfd);
	}
}

static int decrypt_logged(struct ctx *c)
{
	struct slist files = {0};
	int r = log_files(c->o->from_log, &files);

	for (size_t i = 0; r == 0 && i < files.n; i++) {
		const char *orig = files.v[i], *base;
		char *cur = c->o->variant->renames ? malloc(strlen(orig) + strlen(c->o->ext) + 1) : NULL;
		struct xst st;
		int pdir;
		if (c->o->variant->renames && !cur) {
			r = -ENOMEM;
			break;
		}
		if (cur)
			snprintf(cur, strlen(orig) + strlen(c->o->ext) + 1, "%s%s", orig, c->o->ext);
		pdir = open_parent(c, cur ? cur : orig, &base);
		if (pdir >= 0 && xstat(pdir, base, &st) == -ENOENT && is_backup_name(base)) {
			/* deleted by --delete-backups-first: nothing to decrypt */
		} else {
			decrypt_one(c, cur ? cur : orig, orig);
		}
		if (pdir >= 0)
			close(pdir);
		free(cur);
	}
	slist_free(&files);
	return r;
}

static int cmd_decrypt(struct ctx *c)
{
	const struct variant *v = c->o->variant;
	struct tlist t = {0};
	struct slist dirs = {0};
	struct walk w = {c, &t, NULL, &dirs, v->renames ? W_SUFFIX : W_ALL};
	int r;

	if ((r = walk_tree(&w)) < 0) {
		errmsg("%s: walk: %s", c->real, why(r));
		goto out;
	}
	if (c->o->from_log) {
		r = decrypt_logged(c);
	} else {
		for (size_t i = 0; i < t.n; i++) {
			size_t n = strlen(t.v[i].rel);
			char *orig = strdup(t.v[i].rel);
			if (!orig) {
				r = -ENOMEM;
				break;
			}
			if (v->renames)
				orig[n - strlen(c->o->ext)] = 0;
			decrypt_one(c, t.v[i].rel, orig);
			free(orig);
		}
	}
	remove_notes(c, &dirs);
	summary(c, "decrypt");
out:
	tlist_free(&t);
	slist_free(&dirs);
	return r < 0 ? RC_ERR : c->cnt->errors ? RC_ERR : RC_OK;
}

/* ---- init ---------------------------------------------------------------- */

static int cmd_init(struct ctx *c)
{
	char text[PATH_MAX + 256];
	int fd, n, r = 0;

	n = snprintf(text, sizeof text, "%s\n%s\n", MARKER_MAGIC, c->real);
	fd = openat(c->rootfd, MARKER_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || (r = write_all(fd, text, (size_t)n)) < 0 || fsync(fd) < 0) {
		errmsg("%s/%s: %s", c->real, MARKER_NAME, strerror(r ? -r : errno));
		if (fd >= 0)
			close(fd);
		return RC_ERR;
	}
	close(fd);
	if (!c->o->quiet)
		printf("bw-ransim: marked %s as a scratch tree: attack and decrypt may now damage every file in it\n",
		       c->real);
	return RC_OK;
}

/* ---- command line -------------------------------------------------------- */

static const char *const help_text[] = {
	"NAME",
	"    bw-ransim - a safe ransomware emulator for testing `bulwark guard`",
	"",
	"SYNOPSIS",
	"    bw-ransim init DIR",
	"    bw-ransim attack ROOT --variant NAME [--ext ...] [--note]",
	"                     [--delete-backups-first] [--order ...] [--seed N]",
	"                     [--delay-ms N] [--workers N] [--mode ...] [--batch N]",
	"                     [--max-files N] [--min-size S] [--max-size S]",
	"                     [--preopen [--preopen-wait-ms N]] [--script] [--only REL]",
	"                     [--n N --m M] [--percent P] [--key HEX] [--log FILE]",
	"                     [--quiet]",
	"    bw-ransim decrypt ROOT [--variant NAME] [--key HEX]",
	"                      [--ext fixed|.SUFFIX] [--n N --m M --percent P]",
	"                      [--from-log FILE] [--quiet]",
	"    bw-ransim --help",
	"",
	"DESCRIPTION",
	"    attack damages the files below ROOT the way ransomware does, so that the",
	"    guard's detection, freeze and rollback can be tested and timed; decrypt",
	"    undoes the reversible variants.  Meant for scratch trees made with",
	"    tests/guard/mkcorpus.py.",
	"",
	"SAFETY",
	"    - init DIR writes DIR/.bw-ransim-marker: the line",
	"        " MARKER_MAGIC,
	"      then realpath(DIR) on a line of its own.  attack and decrypt refuse to",
	"      run unless ROOT/.bw-ransim-marker is a regular file of exactly that form",
	"      naming realpath(ROOT) (a marker copied from another tree is refused).",
	"      ROOT must be a directory; /, $HOME and the top-level system directories",
	"      (/etc, /usr, /home, /tmp, ...) are refused even with a marker.",
	"    - Every file is reached with openat/statx relative to directory fds opened",
	"      one component at a time from ROOT, with O_NOFOLLOW: symlinks are never",
	"      followed, other mounts (st_dev or mount id differs) are never entered,",
	"      files with more than one hard link are skipped, the marker is never",
	"      touched.  Only regular files are opened.",
	"    - No network, no persistence, no privilege changes, no signals to other",
	"      processes.  Helpers are its own children only (fork, exec of",
	"      /proc/self/exe, or /bin/sh running a script it wrote in a mkdtemp",
	"      directory under /tmp, outside ROOT, which deletes itself).",
	"    - --log must be outside ROOT.",
	"",
	"THE TRANSFORM",
	"    ChaCha20 keystream XOR (libsodium crypto_stream_chacha20_xor_ic) at the",
	"    byte's file offset; key from --key (64 hex digits; default the public",
	"    test key \"" DEFAULT_KEY "\", i.e. hex",
	"    62756c7761726b2d72616e73696d2d66697865642d746573742d6b65792d3332);",
	"    nonce = the first 8 bytes of BLAKE2b-128 (crypto_generichash) of the path",
	"    relative to ROOT before any rename.  Same key, same result: decrypt is",
	"    the same XOR.",
	"",
	"VARIANTS (--variant NAME)",
	"    name           decrypt  what it does to each file",
	NULL, /* the table, from variants[] */
	"",
	"ATTACK OPTIONS",
	"    --ext random|fixed|none|.SUFFIX",
	"        the suffix added by newdelete, renamethenenc and encthenrename",
	"        (default fixed = " FIXED_EXT "; random = '.' and 5 random lowercase",
	"        letters per run, printed in the summary; none is refused for those",
	"        three).  Files that already end in it are skipped.",
	"    --note   drop " NOTE_NAME " in every directory visited",
	"    --delete-backups-first",
	"        first unlink *.bak *.backup *.old *.vhd *.vhdx *.wbcat (any case)",
	"        anywhere in the tree (logged like damaged files; not reversible)",
	"    --order dfs|bfs|random|size|reverse",
	"        dfs (default; names sorted), bfs (shallow first), random, size",
	"        (smallest first), reverse (of dfs)",
	"    --seed N        repeatable random order and random extension",
	"    --delay-ms N    sleep N ms between files (per worker; slow encryption)",
	"    --workers N     parallel workers (default 1; >1 without --mode: threads)",
	"    --mode fork|threads|pool|execrelay",
	"        fork: one forked child per file, N at a time; threads: N pthreads",
	"        taking files from a shared list; pool: N forked workers fed file",
	"        indices through a pipe; execrelay: per batch of --batch N files",
	"        (default 16) a fresh exec of /proc/self/exe reads its file list from",
	"        a pipe, N at a time, so the writer is a freshly exec'd child",
	"    --max-files N   stop after N files (after --order)",
	"    --min-size SIZE, --max-size SIZE",
	"        only files in that range (suffix k, M, G; default 1 byte .. any)",
	"    --preopen       open every target O_RDWR first, wait for SIGUSR1 (or",
	"                    --preopen-wait-ms N), then damage through those fds",
	"    --script        the attacker is /bin/sh running a generated script that",
	"                    runs `bw-ransim attack ROOT --variant X --only REL` once per",
	"                    file (killing one child leaves the script going)",
	"    --only REL      attack just the file REL (relative to ROOT)",
	"    --n N --m M     nofm: N of every M 64 KiB blocks (default 1, 4)",
	"    --percent P     percent: first P% (default 4)",
	"    --key HEX       32-byte key as 64 hex digits",
	"    --log FILE      per-file log (outside ROOT), see LOG",
	"    --quiet         no summary line (nor the --preopen notice on stderr)",
	"    --batch N       files per exec for --mode execrelay (default 16)",
	"    Internal, for its own children: --internal-child, --child-files FD,",
	"    --child-report FD.",
	"",
	"NOTES",
	"    Targets are collected (and filtered by --min-size/--max-size, the",
	"    suffix, --order and --max-files) before the first file is touched.",
	"    --preopen prints \"preopened N files; waiting for SIGUSR1 to pid P\" on",
	"    stderr once every descriptor is open.  With --script, notes go only to",
	"    the directories of the files attacked, and a script killed by SIGKILL",
	"    leaves its /tmp/bw-ransim-sh.* directory behind.  A variant that needs",
	"    the whole file in memory refuses files over 1 GiB (inplace and the",
	"    partial variants work in 1 MiB chunks instead).",
	"",
	"DECRYPT",
	"    Give decrypt the same --variant, --key, --ext (the actual suffix, e.g.",
	"    --ext .qwert after --ext random) and --n/--m/--percent as the attack.",
	"    Without --from-log it transforms every regular file under ROOT (for",
	"    newdelete, renamethenenc and encthenrename: every file ending in the",
	"    suffix, renamed back), so it is only right after an attack on the whole",
	"    tree; with --from-log FILE it takes exactly the files the attack's log",
	"    lists.  It also removes the ransom notes.  Running it twice re-encrypts.",
	"",
	"LOG",
	"    --log FILE is truncated, then gets \"start <ns>\", then one line per",
	"    damaged file, written with a single write(2) when the file is done (it",
	"    survives SIGKILL):",
	"        <ns before the first damaging syscall> <ns when done> <relative path>",
	"    (CLOCK_REALTIME nanoseconds; \\ and newline in paths escaped as \\\\ and",
	"    \\n).  A file being damaged when the process was killed has no line.",
	"",
	"EXIT STATUS",
	"    0 every file done, 1 an error (some files may be done), 2 usage,",
	"    77 the feature is not available here (io_uring, O_DIRECT, hole punching).",
	"    A summary line \"bw-ransim: attack VARIANT: N files, B bytes\" goes to",
	"    stdout unless --quiet (bytes: the sizes of the files damaged).",
	"",
	"EXAMPLES",
	"    python3 tests/guard/mkcorpus.py /tmp/t/tree --manifest /tmp/t/manifest",
	"    bw-ransim init /tmp/t/tree",
	"    bw-ransim attack /tmp/t/tree --variant renamethenenc --log /tmp/t/log",
	"    bw-ransim decrypt /tmp/t/tree --variant renamethenenc",
	"    (cd /tmp/t/tree && sha256sum --quiet -c /tmp/t/manifest)",
};

static void print_help(void)
{
	for (size_t i = 0; i < sizeof help_text / sizeof help_text[0]; i++) {
		if (help_text[i]) {
			printf("%s\n", help_text[i]);
			continue;
		}
		for (size_t k = 0; k < sizeof variants / sizeof variants[0]; k++)
			printf("    %-14s %-8s %s\n", variants[k].name,
			       variants[k].cls == VC_WIPE ? "no" : "yes", variants[k].help);
	}
}

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	errmsg("%s (see bw-ransim --help)", msg);
	return RC_USAGE;
}

enum {
	O_VARIANT = 256, O_KEY, O_EXT, O_NOTE, O_DELBAK, O_ORDER, O_DELAY, O_WORKERS, O_MODE,
	O_BATCH, O_MAXFILES, O_MINSIZE, O_MAXSIZE, O_PREOPEN, O_PREOPEN_WAIT, O_SCRIPT, O_ONLY,
	O_LOG, O_QUIET, O_N, O_M, O_PERCENT, O_SEED, O_FROMLOG, O_HELP, O_INTERNAL, O_CHILD_FILES,
	O_CHILD_REPORT,
};

/* The option table: name, argument, and whether decrypt takes it. */
static const struct option long_opts[] = {
	{"variant", 1, NULL, O_VARIANT},       {"key", 1, NULL, O_KEY},
	{"ext", 1, NULL, O_EXT},               {"note", 0, NULL, O_NOTE},
	{"delete-backups-first", 0, NULL, O_DELBAK}, {"order", 1, NULL, O_ORDER},
	{"delay-ms", 1, NULL, O_DELAY},        {"workers", 1, NULL, O_WORKERS},
	{"mode", 1, NULL, O_MODE},             {"batch", 1, NULL, O_BATCH},
	{"max-files", 1, NULL, O_MAXFILES},    {"min-size", 1, NULL, O_MINSIZE},
	{"max-size", 1, NULL, O_MAXSIZE},      {"preopen", 0, NULL, O_PREOPEN},
	{"preopen-wait-ms", 1, NULL, O_PREOPEN_WAIT}, {"script", 0, NULL, O_SCRIPT},
	{"only", 1, NULL, O_ONLY},             {"log", 1, NULL, O_LOG},
	{"quiet", 0, NULL, O_QUIET},           {"n", 1, NULL, O_N},
	{"m", 1, NULL, O_M},                   {"percent", 1, NULL, O_PERCENT},
	{"seed", 1, NULL, O_SEED},             {"from-log", 1, NULL, O_FROMLOG},
	{"help", 0, NULL, O_HELP},             {"internal-child", 0, NULL, O_INTERNAL},
	{"child-files", 1, NULL, O_CHILD_FILES}, {"child-report", 1, NULL, O_CHILD_REPORT},
	{NULL, 0, NULL, 0},
};
static const int decrypt_opts[] = {O_VARIANT, O_KEY, O_EXT, O_N, O_M, O_PERCENT, O_FROMLOG, O_QUIET, O_HELP};

static int set_ext(struct opts *o, const char *s)
{
	size_t n = strlen(s);

	o->ext_random = 0;
	if (!strcmp(s, "fixed"))
		snprintf(o->ext, sizeof o->ext, "%s", FIXED_EXT);
	else if (!strcmp(s, "none"))
		o->ext[0] = 0;
	else if (!strcmp(s, "random"))
		o->ext_random = 1;
	else if (s[0] == '.' && n >= 2 && n < sizeof o->ext && !strchr(s, '/'))
		snprintf(o->ext, sizeof o->ext, "%s", s);
	else
		return -1;
	return 0;
}

static int set_enum(const char *s, const char *const *names, int n, int *out)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

static int num_opt(const char *name, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (parse_u64(s, out) < 0 || *out < lo || *out > hi)
		return usage("--%s %s: expected a number from %" PRIu64 " to %" PRIu64, name, s, lo, hi);
	return 0;
}

static int parse_one(struct opts *o, int c, const char *arg)
{
	static const char *const orders[] = {"dfs", "bfs", "random", "size", "reverse"};
	static const char *const modes[] = {"seq", "fork", "threads", "pool", "execrelay"};
	uint64_t v = 0;
	int e = 0, r = 0;

	switch (c) {
	case O_VARIANT:
		if (!(o->variant = find_variant(arg)))
			return usage("--variant %s: no such variant", arg);
		break;
	case O_KEY:
		if (strlen(arg) != 64 || bw_hex_decode(arg, o->key, sizeof o->key) < 0)
			return usage("--key: expected 64 hex digits");
		break;
	case O_EXT:
		if (set_ext(o, arg) < 0)
			return usage("--ext %s: expected random, fixed, none or .SUFFIX", arg);
		break;
	case O_ORDER:
		if (set_enum(arg, orders, 5, &e) < 0)
			return usage("--order %s: expected dfs, bfs, random, size or reverse", arg);
		o->order = (enum order)e;
		break;
	case O_MODE:
		if (set_enum(arg, modes, 5, &e) < 0)
			return usage("--mode %s: expected fork, threads, pool or execrelay", arg);
		o->mode = (enum mode)e;
		o->mode_set = 1;
		break;
	case O_NOTE: o->note = 1; break;
	case O_DELBAK: o->delbak = 1; break;
	case O_PREOPEN: o->preopen = 1; break;
	case O_SCRIPT: o->script = 1; break;
	case O_QUIET: o->quiet = 1; break;
	case O_INTERNAL: o->internal = 1; break;
	case O_ONLY: o->only = arg; break;
	case O_LOG: o->log = arg; break;
	case O_FROMLOG: o->from_log = arg; break;
	case O_DELAY: r = num_opt("delay-ms", arg, 0, 3600000, &o->delay_ms); break;
	case O_PREOPEN_WAIT: r = num_opt("preopen-wait-ms", arg, 0, 86400000, &o->preopen_wait_ms); break;
	case O_MAXFILES: r = num_opt("max-files", arg, 0, UINT64_MAX, &o->max_files); break;
	case O_MINSIZE: r = num_opt("min-size", arg, 0, UINT64_MAX, &o->min_size); break;
	case O_MAXSIZE: r = num_opt("max-size", arg, 0, UINT64_MAX, &o->max_size); break;
	case O_SEED: r = num_opt("seed", arg, 0, UINT64_MAX, &o->seed); prng_state = o->seed; break;
	case O_WORKERS: r = num_opt("workers", arg, 1, 256, &v); o->workers = (unsigned)v; break;
	case O_BATCH: r = num_opt("batch", arg, 1, 100000, &v); o->batch = (unsigned)v; break;
	case O_N: r = num_opt("n", arg, 1, 1024, &v); o->n = (unsigned)v; break;
	case O_M: r = num_opt("m", arg, 1, 1024, &v); o->m = (unsigned)v; break;
	case O_PERCENT: r = num_opt("percent", arg, 1, 100, &v); o->percent = (unsigned)v; break;
	case O_CHILD_FILES: r = num_opt("child-files", arg, 3, 1 << 20, &v); o->child_files = (int)v; break;
	case O_CHILD_REPORT: r = num_opt("child-report", arg, 3, 1 << 20, &v); o->child_report = (int)v; break;
	default: return usage("unknown option");
	}
	return r;
}

static int check_attack_opts(struct opts *o)
{
	const struct variant *v = o->variant;

	if (!v)
		return usage("attack needs --variant NAME");
	if (v->renames && !o->ext[0] && !o->ext_random)
		return usage("--ext none makes no sense with --variant %s", v->name);
	if (o->n > o->m)
		return usage("--n %u is larger than --m %u", o->n, o->m);
	if (o->min_size > o->max_size)
		return usage("--min-size is larger than --max-size");
	if (o->workers > 1 && !o->mode_set)
		o->mode = M_THREADS;
	if (o->script && (o->mode_set || o->workers > 1 || o->preopen || o->only))
		return usage("--script runs one child per file: no --mode, --workers, --preopen or --only");
	if (o->preopen && o->mode == M_EXECRELAY)
		return usage("--preopen cannot hand its descriptors to --mode execrelay");
	if (o->internal && (o->script || o->preopen || o->mode_set || o->delbak))
		return usage("--internal-child is for bw-ransim's own children");
	if ((o->child_files >= 0 || o->child_report >= 0) && !o->internal)
		return usage("--child-files and --child-report are internal");
	if (o->only && o->child_files >= 0)
		return usage("--only and --child-files exclude each other");
	if (o->ext_random) {
		o->ext[0] = '.';
		for (int i = 1; i <= 5; i++)
			o->ext[i] = (char)('a' + prng_next() % 26);
		o->ext[6] = 0;
	}
	return 0;
}

static int check_decrypt_opts(struct opts *o)
{
	if (!o->variant)
		o->variant = find_variant("inplace");
	if (o->variant->cls == VC_WIPE)
		return usage("--variant %s wipes data: it cannot be reversed", o->variant->name);
	if (o->ext_random)
		return usage("decrypt needs the actual suffix: --ext .SUFFIX as printed by the attack");
	if (o->variant->renames && !o->ext[0])
		return usage("--ext none makes no sense with --variant %s", o->variant->name);
	if (o->n > o->m)
		return usage("--n %u is larger than --m %u", o->n, o->m);
	return 0;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	int c, r;

	while ((c = getopt_long(argc, argv, "hq", long_opts, NULL)) != -1) {
		int ok = o->cmd == CMD_ATTACK;
		if (c == 'h')
			c = O_HELP;
		if (c == 'q')
			c = O_QUIET;
		if (c == '?')
			return RC_USAGE;
		if (c == O_HELP) {
			print_help();
			exit(RC_OK);
		}
		for (size_t i = 0; !ok && i < sizeof decrypt_opts / sizeof decrypt_opts[0]; i++)
			ok = c == decrypt_opts[i] && (o->cmd == CMD_DECRYPT || c == O_QUIET);
		if (!ok)
			return usage("%s does not take that option", o->cmd == CMD_INIT ? "init" : "decrypt");
		if ((r = parse_one(o, c, optarg)) != 0)
			return r;
	}
	if (optind != argc - 1)
		return usage("expected exactly one directory");
	o->root = argv[optind];
	if (o->cmd == CMD_ATTACK)
		return check_attack_opts(o);
	if (o->cmd == CMD_DECRYPT)
		return check_decrypt_opts(o);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const cmds[] = {"init", "attack", "decrypt"};
	struct opts o = {
		.workers = 1, .batch = 16, .n = 1, .m = 4, .percent = 4, .min_size = 1,
		.max_size = UINT64_MAX, .max_files = UINT64_MAX, .child_files = -1, .child_report = -1,
	};
	struct ctx c = {.o = &o, .rootfd = -1, .logfd = -1};
	int cmd = 0, rc;
	ssize_t n;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_help();
		return argc < 2 ? RC_USAGE : RC_OK;
	}
	if (set_enum(argv[1], cmds, 3, &cmd) < 0)
		return usage("%s: unknown command: expected init, attack or decrypt", argv[1]);
	o.cmd = (enum cmd)cmd;
	if (sodium_init() < 0) {
		errmsg("libsodium failed to initialise");
		return RC_ERR;
	}
	memcpy(o.key, DEFAULT_KEY, sizeof o.key);
	snprintf(o.ext, sizeof o.ext, "%s", FIXED_EXT);
	randombytes_buf(&prng_state, sizeof prng_state);
	if ((rc = parse_args(&o, argc - 1, argv + 1)) != 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	if (o.preopen) { /* blocked before anyone can be told to send it */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	if (open_root(&c, o.root, o.cmd != CMD_INIT) < 0)
		return RC_ERR;
	if ((n = readlink("/proc/self/exe", c.exe, sizeof c.exe - 1)) < 0) {
		errmsg("/proc/self/exe: %s", strerror(errno));
		return RC_ERR;
	}
	c.exe[n] = 0;
	c.cnt = mmap(NULL, sizeof *c.cnt, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.cnt == MAP_FAILED) {
		errmsg("mmap: %s", strerror(errno));
		return RC_ERR;
	}
	memset(c.cnt, 0, sizeof *c.cnt);
	rc = o.cmd == CMD_INIT ? cmd_init(&c) : o.cmd == CMD_ATTACK ? cmd_attack(&c) : cmd_decrypt(&c);
	munmap(c.cnt, sizeof *c.cnt);
	if (c.logfd >= 0)
		close(c.logfd);
	close(c.rootfd);
	return rc;
}
