/* Restore: recreate a snapshot's files under a target directory.
 *
 * Three phases.
 *  1. One thread walks the trees, creates directories (mode 0700 until the
 *     end), symlinks, FIFOs, devices and sockets, and lists the regular
 *     files with each blob's place in the packs (from the index) and in
 *     the file.
 *  2. A pool of workers writes file contents.  Small files are batched,
 *     big ones split into ranges written at their offsets; a worker reads
 *     runs of blobs that lie next to each other in a pack with one pread,
 *     then decrypts, decompresses and pwrites each.  When a file is
 *     complete its metadata is set through its descriptor and its other
 *     hard links are made.
 *  3. Directory metadata, deepest first, so that creating children does
 *     not move a directory's times afterwards.
 *
 * Safety: names are checked (no '/', NUL, ".", ".."); directories are
 * created relative to their parent's descriptor and opened O_NOFOLLOW,
 * and the workers open paths under the target with openat2(RESOLVE_BENEATH
 * | RESOLVE_NO_SYMLINKS), so no symlink (restored or already in the
 * target) is followed.
 *
 * Metadata order: owner, xattrs (ACLs included), mode, times.  chown
 * clears setuid/setgid bits and file capabilities (security.capability),
 * so both are set after it; writes clear setuid too, so all of it comes
 * after the data. */
#include "repo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <linux/limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define RUN_MAX ((size_t)4 << 20)          /* bytes read from a pack at once */
#define BATCH_BYTES ((uint64_t)4 << 20)    /* small files per task */
#define BATCH_FILES 128
#define SPLIT_PART ((uint64_t)32 << 20)    /* big files: bytes per task */
#define ZERO_BLOCK 4096                    /* sparse: hole granularity */
#define OFF_UNKNOWN UINT64_MAX
#define IDCACHE_MAX 256

/* One blob of a file: where it lies in its pack and in the file. */
struct seg {
	uint64_t off;  /* in the file; OFF_UNKNOWN if it cannot be known */
	uint32_t pack; /* BW_PACK_NONE: not in the index */
	uint32_t poff, plen, raw;
};

struct rfile {
	char *path;               /* in the snapshot: "/a/b", NUL-terminated */
	const struct bw_node *n;
	uint32_t uid, gid;        /* resolved owner */
	size_t seq;               /* walk order */
	struct seg *segs;         /* n->ncontent of them */
	struct rfile *primary;    /* hard link: made from this file */
	struct rfile *links;      /* primary: its other names */
	struct rfile *next_link;
	int fd;                   /* split files: shared by the parts */
	int parts_left;           /* split files, guarded by c->mu */
	int damaged;              /* some content could not be restored */
	int failed;               /* not created */
	uint64_t part_bytes;      /* bytes written by all parts (c->mu) */
};

struct rdir {
	char *path;
	const struct bw_node *n;
	uint32_t uid, gid;
};

/* One directory level of the walk. */
struct level {
	const struct bw_node *n; /* NULL: the target */
	size_t plen;             /* length of its path in c->path */
	int fd;                  /* -1: not created yet, -2: failed */
};

struct idcache {
	struct { char name[64]; uint32_t id; int ok; } v[IDCACHE_MAX];
	int n;
};

struct wstate; /* a worker's buffers, below */


/* A pool task: files f[0..nf), from blob b0 of f[0] to blob b1 of f[nf-1]. */
struct job {
	struct ctx *c;
	struct rfile **f;
	size_t nf, b0, b1;
	int verify;
};

struct ctx {
	struct bw_repo *r;
	const struct bw_restore_opts *o;
	int rootfd;
	int chown_ok;
	int have_openat2;
	int nthreads;

	/* walk (single thread) */
	struct bw_buf path;
	struct level *lv;
	size_t nlv, caplv;
	struct bw_tree **trees;
	size_t ntrees, captrees;
	struct rfile **files;
	size_t nfiles, capfiles;
	struct rdir *dirs;
	size_t ndirs, capdirs;
	struct idcache users, groups;
	char name[BW_NAME_MAX + 1];
	int sub_found;

	struct bw_pool *pool;
	pthread_mutex_t mu; /* guards everything below */
	struct wstate *idle;
	struct bw_progress prog;
	struct bw_restore_stats st;
	int damaged;
	int xattr_unsup;
	int fatal;
};

/* ---- reporting ---- */

static void report(struct ctx *c, const char *path, const char *fmt, ...)
	BW_PRINTF(3, 4);
static void report(struct ctx *c, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->mu);
	c->st.errors++;
	c->prog.errors++;
	if (c->o->on_error)
		c->o->on_error(path, msg, c->o->error_arg);
	else
		bw_warn("%s: %s", path, msg);
	pthread_mutex_unlock(&c->mu);
}

/* The one place progress is reported from. */
static void progress(struct ctx *c, uint64_t files, uint64_t bytes,
                     const char *cur, int final)
{
	pthread_mutex_lock(&c->mu);
	c->prog.files_done += files;
	c->prog.bytes_done += bytes;
	if (c->o->progress) {
		c->prog.current = cur;
		c->prog.final = final;
		c->o->progress(&c->prog, c->o->progress_arg);
		c->prog.current = NULL;
	}
	pthread_mutex_unlock(&c->mu);
}

static void count(struct ctx *c, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&c->mu);
	*field += n;
	pthread_mutex_unlock(&c->mu);
}

static const char *errmsg(int r)
{
	return *bw_err_msg() ? bw_err_msg() : bw_strerror(r);
}

/* ---- paths under the target ---- */

/* Open path ("/a/b", inside the snapshot) under the target without
 * following any symlink on the way. */
static int at_open(struct ctx *c, const char *path, int flags, mode_t mode)
{
	if (__atomic_load_n(&c->have_openat2, __ATOMIC_RELAXED)) {
		struct open_how h;
		memset(&h, 0, sizeof h);
		h.flags = (uint64_t)(flags | O_CLOEXEC);
		h.mode = (flags & O_CREAT) ? mode : 0;
		h.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		            RESOLVE_NO_MAGICLINKS;
		int fd = (int)syscall(SYS_openat2, c->rootfd, path + 1, &h,
		                      sizeof h);
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		__atomic_store_n(&c->have_openat2, 0, __ATOMIC_RELAXED);
	}
	/* old kernels: the walk checked every directory it made */
	return openat(c->rootfd, path + 1, flags | O_CLOEXEC | O_NOFOLLOW, mode);
}

/* The parent directory of path, and its last component in *name.
 * Returns c->rootfd for top-level names (not to be closed). */
static int parent_open(struct ctx *c, const char *path, const char **name)
{
	const char *sl = strrchr(path, '/');
	*name = sl + 1;
	if (sl == path)
		return c->rootfd;
	size_t l = (size_t)(sl - path);
	char *p = strndup(path, l);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	int fd = at_open(c, p, O_PATH | O_DIRECTORY, 0);
	free(p);
	return fd;
}

static void parent_close(struct ctx *c, int fd)
{
	if (fd >= 0 && fd != c->rootfd)
		close(fd);
}

/* Names come from untrusted trees: refuse anything that is not one
 * plain path component. */
static int name_ok(const char *s, size_t n)
{
	if (!n || n > BW_NAME_MAX || memchr(s, '/', n) || memchr(s, 0, n))
		return 0;
	return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

/* ---- owners and metadata ---- */

static int id_lookup(struct idcache *k, int user, const char *s, size_t n,
                     uint32_t *id)
{
	char name[64], buf[16384];
	if (!n || n >= sizeof name)
		return 0;
	memcpy(name, s, n);
	name[n] = 0;
	for (int i = 0; i < k->n; i++)
		if (!strcmp(k->v[i].name, name)) {
			if (k->v[i].ok)
				*id = k->v[i].id;
			return k->v[i].ok;
		}
	int ok = 0;
	uint32_t got = 0;
	if (user) {
		struct passwd pw, *res = NULL;
		if (!getpwnam_r(name, &pw, buf, sizeof buf, &res) && res) {
			ok = 1;
			got = (uint32_t)res->pw_uid;
		}
	} else {
		struct group gr, *res = NULL;
		if (!getgrnam_r(name, &gr, buf, sizeof buf, &res) && res) {
			ok = 1;
			got = (uint32_t)res->gr_gid;
		}
	}
	if (k->n < IDCACHE_MAX) {
		snprintf(k->v[k->n].name, sizeof k->v[k->n].name, "%s", name);
		k->v[k->n].id = got;
		k->v[k->n].ok = ok;
		k->n++;
	}
	if (ok)
		*id = got;
	return ok;
}

static void resolve_owner(struct ctx *c, const struct bw_node *n,
                          uint32_t *uid, uint32_t *gid)
{
	*uid = n->uid;
	*gid = n->gid;
	if (!c->chown_ok || c->o->numeric_owner)
		return;
	id_lookup(&c->users, 1, n->user, n->user_len, uid);
	id_lookup(&c->groups, 0, n->group, n->group_len, gid);
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec t;
	int64_t s = ns / 1000000000, r = ns % 1000000000;
	if (r < 0) {
		r += 1000000000;
		s--;
	}
	t.tv_sec = (time_t)s;
	t.tv_nsec = (long)r;
	return t;
}

static void node_times(const struct bw_node *n, struct timespec ts[2])
{
	ts[0] = ns_ts(n->atime_ns ? n->atime_ns : n->mtime_ns);
	ts[1] = ns_ts(n->mtime_ns);
}

/* Set xattrs through fd, or on lpath (not following) when fd < 0. */
static void set_xattrs(struct ctx *c, int fd, const char *lpath,
                       const char *path, const struct bw_node *n)
{
	char name[XATTR_NAME_MAX + 1];
	for (size_t i = 0; i < n->nxattrs; i++) {
		const struct bw_xattr *x = &n->xattrs[i];
		if (!x->name_len || x->name_len > XATTR_NAME_MAX ||
		    memchr(x->name, 0, x->name_len)) {
			report(c, path, "extended attribute with an invalid name skipped");
			continue;
		}
		memcpy(name, x->name, x->name_len);
		name[x->name_len] = 0;
		int r = fd >= 0 ? fsetxattr(fd, name, x->value, x->value_len, 0)
		                : lsetxattr(lpath, name, x->value, x->value_len, 0);
		if (!r)
			continue;
		if (errno == ENOTSUP) {
			pthread_mutex_lock(&c->mu);
			int first = !c->xattr_unsup;
			c->xattr_unsup = 1;
			pthread_mutex_unlock(&c->mu);
			if (first)
				report(c, path, "the target file system does not support "
				       "extended attributes (%s): xattrs and ACLs are "
				       "not restored (reported once)", name);
			return;
		}
		report(c, path, "cannot set extended attribute %s: %s", name,
		       strerror(errno));
	}
}

/* Metadata of a file or directory through its descriptor. */
static void meta_fd(struct ctx *c, int fd, const char *path,
                    const struct bw_node *n, uint32_t uid, uint32_t gid)
{
	struct timespec ts[2];
	if (c->chown_ok && fchown(fd, uid, gid))
		report(c, path, "cannot change owner to %u:%u: %s", uid, gid,
		       strerror(errno));
	set_xattrs(c, fd, NULL, path, n);
	if (fchmod(fd, n->mode & 07777))
		report(c, path, "cannot set mode %04o: %s", n->mode & 07777,
		       strerror(errno));
	node_times(n, ts);
	if (futimens(fd, ts))
		report(c, path, "cannot set times: %s", strerror(errno));
}

/* Metadata of a symlink, FIFO, device or socket just made in pfd. */
static void meta_at(struct ctx *c, int pfd, const char *name,
                    const char *path, const struct bw_node *n)
{
	struct timespec ts[2];
	uint32_t uid, gid;
	resolve_owner(c, n, &uid, &gid);
	if (c->chown_ok && fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW))
		report(c, path, "cannot change owner to %u:%u: %s", uid, gid,
		       strerror(errno));
	if (n->nxattrs) {
		struct bw_buf lp;
		bw_buf_init(&lp, 0);
		if (!bw_buf_printf(&lp, "%s%s", c->o->target, path))
			set_xattrs(c, -1, bw_buf_cstr(&lp), path, n);
		bw_buf_release(&lp);
	}
	/* a symlink's mode means nothing on Linux and cannot be set */
	if (n->type != BW_NODE_SYMLINK && fchmodat(pfd, name, n->mode & 07777, 0))
		report(c, path, "cannot set mode %04o: %s", n->mode & 07777,
		       strerror(errno));
	node_times(n, ts);
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW))
		report(c, path, "cannot set times: %s", strerror(errno));
}

/* ---- the walk ---- */

static const char *cur_path(struct ctx *c)
{
	return bw_buf_cstr(&c->path);
}

static int keep_tree(struct ctx *c, struct bw_tree *t)
{
	if (c->ntrees == c->captrees) {
		size_t nc = c->captrees ? c->captrees * 2 : 64;
		void *v = realloc(c->trees, nc * sizeof *c->trees);
		if (!v)
			return BW_ENOMEM;
		c->trees = v;
		c->captrees = nc;
	}
	c->trees[c->ntrees++] = t;
	return 0;
}

/* mkdir name in pfd (or take an existing directory); returns its fd. */
static int make_dir(struct ctx *c, int pfd, const char *name, const char *path)
{
	struct stat st;
	if (mkdirat(pfd, name, 0700)) {
		if (errno != EEXIST) {
			report(c, path, "cannot create directory: %s", strerror(errno));
			return -1;
		}
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(st.st_mode)) {
			if (!c->o->overwrite) {
				report(c, path, "exists and is not a directory "
				       "(use --overwrite to replace it)");
				return -1;
			}
			if (unlinkat(pfd, name, 0) || mkdirat(pfd, name, 0700)) {
				report(c, path, "cannot replace with a directory: %s",
				       strerror(errno));
				return -1;
			}
		}
	}
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		report(c, path, "cannot open directory: %s", strerror(errno));
	return fd;
}

/* Create every directory level not made yet (lazily: with includes, a
 * directory is made only when something inside it is restored).
 * 1: a level could not be made (reported), skip what is below it. */
static int ensure_dirs(struct ctx *c)
{
	for (size_t i = 1; i < c->nlv; i++) {
		struct level *l = &c->lv[i];
		if (l->fd == -2)
			return 1;
		if (l->fd >= 0)
			continue;
		const struct bw_node *n = l->n;
		memcpy(c->name, n->name, n->name_len);
		c->name[n->name_len] = 0;
		char *p = strndup((const char *)c->path.data, l->plen);
		if (!p)
			return BW_ENOMEM;
		l->fd = make_dir(c, c->lv[i - 1].fd, c->name, p);
		if (l->fd < 0) {
			l->fd = -2;
			free(p);
			return 1;
		}
		if (c->ndirs == c->capdirs) {
			size_t nc = c->capdirs ? c->capdirs * 2 : 64;
			void *v = realloc(c->dirs, nc * sizeof *c->dirs);
			if (!v) {
				free(p);
				return BW_ENOMEM;
			}
			c->dirs = v;
			c->capdirs = nc;
		}
		struct rdir *d = &c->dirs[c->ndirs++];
		d->path = p;
		d->n = n;
		resolve_owner(c, n, &d->uid, &d->gid);
		c->st.dirs++;
	}
	return 0;
}

static int walk(struct ctx *c, const struct bw_id *tid, int sel, const char *sub);

static int walk_dir(struct ctx *c, const struct bw_node *n, int create,
                    int sel, const char *sub)
{
	if (c->nlv == c->caplv) {
		size_t nc = c->caplv * 2;
		void *v = realloc(c->lv, nc * sizeof *c->lv);
		if (!v)
			return BW_ENOMEM;
		c->lv = v;
		c->caplv = nc;
	}
	struct level *l = &c->lv[c->nlv++];
	l->n = n;
	l->plen = c->path.len;
	l->fd = -1;
	int r = create ? ensure_dirs(c) : 0;
	if (r == 0)
		r = walk(c, &n->subtree, sel, sub);
	else if (r > 0)
		r = 0; /* reported: skip the subtree */
	l = &c->lv[--c->nlv];
	if (l->fd >= 0)
		close(l->fd);
	return r;
}

/* Resolve a file's blobs to places in packs and offsets in the file.  An
 * unindexed blob's length is unknown: offsets before it are counted from
 * the start, those after the last one from the end, and those between
 * two missing blobs cannot be placed. */
static int file_segs(struct ctx *c, struct rfile *f)
{
	const struct bw_node *n = f->n;
	if (!n->ncontent)
		return 0;
	if (!(f->segs = calloc(n->ncontent, sizeof *f->segs)))
		return BW_ENOMEM;
	size_t first_missing = n->ncontent, last_missing = 0;
	for (size_t i = 0; i < n->ncontent; i++) {
		struct bw_index_entry e;
		struct seg *s = &f->segs[i];
		if (bw_index_lookup(c->r->index, &n->content[i], &e) ||
		    e.type != BW_BLOB_DATA) {
			s->pack = BW_PACK_NONE;
			if (first_missing == n->ncontent)
				first_missing = i;
			last_missing = i;
			continue;
		}
		s->pack = e.pack;
		s->poff = e.offset;
		s->plen = e.length;
		s->raw = e.raw_length;
	}
	uint64_t off = 0;
	for (size_t i = 0; i < n->ncontent; i++) {
		f->segs[i].off = i < first_missing ? off : OFF_UNKNOWN;
		off += f->segs[i].raw;
	}
	if (first_missing < n->ncontent) {
		uint64_t end = n->size;
		for (size_t i = n->ncontent; i-- > last_missing + 1;) {
			if (f->segs[i].raw > end)
				break;
			end -= f->segs[i].raw;
			f->segs[i].off = end;
		}
	} else if (off != n->size) {
		report(c, f->path, "blobs hold %llu bytes but the file had %llu "
		       "(snapshot damaged)", (unsigned long long)off,
		       (unsigned long long)n->size);
		f->damaged = 1;
		pthread_mutex_lock(&c->mu);
		c->damaged = 1;
		pthread_mutex_unlock(&c->mu);
	}
	return 0;
}

static int add_file(struct ctx *c, const struct bw_node *n)
{
	struct rfile *f = calloc(1, sizeof *f);
	int r = BW_ENOMEM;
	if (!f)
		return r;
	f->n = n;
	f->fd = -1;
	f->seq = c->nfiles;
	if (!(f->path = strdup(cur_path(c))))
		goto fail;
	resolve_owner(c, n, &f->uid, &f->gid);
	if ((r = file_segs(c, f)))
		goto fail;
	if (c->nfiles == c->capfiles) {
		size_t nc = c->capfiles ? c->capfiles * 2 : 256;
		void *v = realloc(c->files, nc * sizeof *c->files);
		if (!v) {
			r = BW_ENOMEM;
			goto fail;
		}
		c->files = v;
		c->capfiles = nc;
	}
	c->files[c->nfiles++] = f;
	c->prog.files_total++;
	return 0;
fail:
	free(f->segs);
	free(f->path);
	free(f);
	return r;
}

/* Make a symlink, FIFO, device or socket, replacing an existing entry
 * with --overwrite. */
static int make_special(struct ctx *c, int pfd, const char *name,
                        const struct bw_node *n, const char *target)
{
	for (int tries = 0; tries < 2; tries++) {
		int r;
		switch (n->type) {
		case BW_NODE_SYMLINK: r = symlinkat(target, pfd, name); break;
		case BW_NODE_FIFO: r = mkfifoat(pfd, name, 0600); break;
		case BW_NODE_CHR:
			r = mknodat(pfd, name, S_IFCHR | 0600, (dev_t)n->rdev);
			break;
		case BW_NODE_BLK:
			r = mknodat(pfd, name, S_IFBLK | 0600, (dev_t)n->rdev);
			break;
		default: r = mknodat(pfd, name, S_IFSOCK | 0600, 0); break;
		}
		if (!r)
			return 0;
		if (errno != EEXIST || !c->o->overwrite || tries)
			return -1;
		if (unlinkat(pfd, name, 0))
			return -1;
	}
	return -1;
}

static int restore_special(struct ctx *c, const struct bw_node *n)
{
	const char *path = cur_path(c);
	char *target = NULL;
	int pfd = c->lv[c->nlv - 1].fd;
	if (n->type == BW_NODE_SYMLINK) {
		if (!n->target_len || memchr(n->target, 0, n->target_len)) {
			report(c, path, "symlink with an invalid target skipped");
			return 0;
		}
		if (!(target = strndup(n->target, n->target_len)))
			return BW_ENOMEM;
	}
	if (make_special(c, pfd, c->name, n, target)) {
		if (errno == EEXIST)
			report(c, path, "already exists (use --overwrite to replace it)");
		else if (errno == EPERM && (n->type == BW_NODE_CHR || n->type == BW_NODE_BLK))
			report(c, path, "cannot create device node: %s (needs root)",
			       strerror(errno));
		else
			report(c, path, "cannot create: %s", strerror(errno));
	} else {
		meta_at(c, pfd, c->name, path, n);
		c->st.others++;
	}
	free(target);
	return 0;
}

static int restore_leaf(struct ctx *c, const struct bw_node *n)
{
	int r = ensure_dirs(c);
	if (r)
		return r > 0 ? 0 : r;
	memcpy(c->name, n->name, n->name_len);
	c->name[n->name_len] = 0;
	switch (n->type) {
	case BW_NODE_FILE: return add_file(c, n);
	case BW_NODE_SYMLINK:
	case BW_NODE_FIFO:
	case BW_NODE_CHR:
	case BW_NODE_BLK:
	case BW_NODE_SOCK: return restore_special(c, n);
	default:
		report(c, cur_path(c), "unknown node type %u skipped", n->type);
		return 0;
	}
}

static int pat_match(const char *pat, const char *path)
{
	const char *base = strrchr(path, '/') + 1;
	return fnmatch(pat, strchr(pat, '/') ? path : base, 0) == 0;
}

static int any_match(const char *const *pats, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (pat_match(pats[i], path))
			return 1;
	return 0;
}

/* Could an include pattern match something below directory dir?  Only a
 * pattern's literal start (before any wildcard) can rule it out. */
static int could_match_below(struct ctx *c, const char *dir)
{
	size_t dl = strlen(dir);
	for (size_t i = 0; i < c->o->nincludes; i++) {
		const char *p = c->o->includes[i];
		if (p[0] != '/')
			return 1;
		size_t lit = strcspn(p, "*?[\\");
		size_t k = 0;
		while (k < lit && k < dl && p[k] == dir[k])
			k++;
		if (k == dl && (k == lit || p[k] == '/'))
			return 1;
		if (k == lit && lit < dl + 1)
			return 1;
	}
	return 0;
}

static int visit(struct ctx *c, const struct bw_node *n, int sel, const char *sub)
{
	const char *path = cur_path(c);
	if (any_match(c->o->excludes, c->o->nexcludes, path))
		return 0;
	if (sub && *sub) {
		size_t cl = strcspn(sub, "/");
		if (cl != n->name_len || memcmp(sub, n->name, cl))
			return 0;
		const char *rest = sub + cl;
		while (*rest == '/')
			rest++;
		if (*rest)
			return n->type == BW_NODE_DIR ? walk_dir(c, n, 0, 0, rest) : 0;
		c->sub_found = 1;
	}
	int take = sel || !c->o->nincludes ||
	           any_match(c->o->includes, c->o->nincludes, path);
	if (!take) {
		if (n->type == BW_NODE_DIR && could_match_below(c, path))
			return walk_dir(c, n, 0, 0, NULL);
		return 0;
	}
	if (n->type == BW_NODE_DIR)
		return walk_dir(c, n, 1, 1, NULL);
	return restore_leaf(c, n);
}

static int walk(struct ctx *c, const struct bw_id *tid, int sel, const char *sub)
{
	struct bw_tree *t = calloc(1, sizeof *t);
	int r;
	if (!t)
		return BW_ENOMEM;
	bw_err_clear();
	if ((r = bw_repo_load_tree(c->r, tid, t))) {
		char hex[2 * BW_ID_LEN + 1];
		bw_id_hex(tid, hex);
		report(c, c->path.len ? cur_path(c) : "/",
		       "directory contents lost: tree %.16s: %s", hex, errmsg(r));
		bw_err_clear();
		free(t);
		pthread_mutex_lock(&c->mu);
		c->damaged = 1;
		pthread_mutex_unlock(&c->mu);
		return r == BW_ENOMEM ? r : 0;
	}
	if ((r = keep_tree(c, t))) {
		bw_tree_release(t);
		free(t);
		return r;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct bw_node *n = &t->nodes[i];
		size_t plen = c->path.len;
		if (!name_ok(n->name, n->name_len)) {
			report(c, c->path.len ? cur_path(c) : "/",
			       "entry with an invalid name skipped");
			continue;
		}
		if ((r = bw_buf_put_u8(&c->path, '/')) ||
		    (r = bw_buf_append(&c->path, n->name, n->name_len)))
			return r;
		r = visit(c, n, sel, sub);
		c->path.len = plen;
		if (r)
			return r;
	}
	return 0;
}

/* ---- hard links ---- */

static int link_cmp(const void *a, const void *b)
{
	const struct rfile *x = *(struct rfile *const *)a;
	const struct rfile *y = *(struct rfile *const *)b;
	if (x->n->dev != y->n->dev)
		return x->n->dev < y->n->dev ? -1 : 1;
	if (x->n->ino != y->n->ino)
		return x->n->ino < y->n->ino ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int same_content(const struct bw_node *a, const struct bw_node *b)
{
	return a->size == b->size && a->ncontent == b->ncontent &&
	       (!a->ncontent ||
	        !memcmp(a->content, b->content, a->ncontent * sizeof *a->content));
}

/* Files with the same (dev, ino) become links to the first of them.  A
 * file changed between reading two of its names keeps its own content. */
static int group_links(struct ctx *c)
{
	struct rfile **v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		if (c->files[i]->n->nlink > 1)
			n++;
	if (n < 2)
		return 0;
	if (!(v = malloc(n * sizeof *v)))
		return BW_ENOMEM;
	n = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		if (c->files[i]->n->nlink > 1)
			v[n++] = c->files[i];
	qsort(v, n, sizeof *v, link_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		struct rfile **tail = &v[i]->links;
		for (; j < n && v[j]->n->dev == v[i]->n->dev &&
		       v[j]->n->ino == v[i]->n->ino; j++) {
			if (!same_content(v[i]->n, v[j]->n))
				continue;
			v[j]->primary = v[i];
			*tail = v[j];
			tail = &v[j]->next_link;
		}
		i = j;
	}
	free(v);
	return 0;
}

/* Link f's other names to the open, complete file fd. */
static void make_links(struct ctx *c, struct rfile *f, int fd)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	for (struct rfile *l = f->links; l; l = l->next_link) {
		const char *name;
		int pfd = parent_open(c, l->path, &name), r = -1;
		if (pfd < 0) {
			report(c, l->path, "cannot open its directory: %s",
			       strerror(errno));
			continue;
		}
		for (int tries = 0; tries < 2; tries++) {
			r = linkat(AT_FDCWD, proc, pfd, name, AT_SYMLINK_FOLLOW);
			if (r && errno == ENOENT) /* no /proc: by name */
				r = linkat(c->rootfd, f->path + 1, pfd, name, 0);
			if (!r || errno != EEXIST || !c->o->overwrite || tries)
				break;
			if (unlinkat(pfd, name, 0))
				break;
		}
		if (r)
			report(c, l->path, "cannot make hard link to %s: %s", f->path,
			       errno == EEXIST ? "already exists (use --overwrite)"
			                       : strerror(errno));
		else
			count(c, &c->st.files, 1);
		parent_close(c, pfd);
		progress(c, 1, 0, l->path, 0);
	}
}

static void links_failed(struct ctx *c, struct rfile *f)
{
	for (struct rfile *l = f->links; l; l = l->next_link) {
		report(c, l->path, "not restored: it is a hard link to %s, which "
		       "could not be created", f->path);
		progress(c, 1, 0, l->path, 0);
	}
}

/* ---- file contents (workers) ---- */

#define NRUNS 2                   /* pack runs a worker keeps */
#define GAP_MAX ((uint32_t)256 << 10) /* read over gaps this small */
#define LOOKAHEAD 512             /* blobs scanned for a run */

struct run {
	struct bw_buf b;
	uint32_t pack;
	uint64_t lo, used;
	int ok;
};

struct wstate {
	struct bw_blob_ctx *bc;
	struct run runs[NRUNS];
	struct bw_buf plain;
	uint64_t tick;
	struct wstate *next;
};

static void wstate_free(struct wstate *w)
{
	if (!w)
		return;
	bw_blob_ctx_free(w->bc);
	for (int i = 0; i < NRUNS; i++)
		bw_buf_release(&w->runs[i].b);
	if (w->plain.data)
		bw_wipe(w->plain.data, w->plain.cap);
	bw_buf_release(&w->plain);
	free(w);
}

static struct wstate *wstate_new(void)
{
	struct wstate *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	if (!(w->bc = bw_blob_ctx_new(0))) {
		free(w);
		return NULL;
	}
	for (int i = 0; i < NRUNS; i++)
		bw_buf_init(&w->runs[i].b, RUN_MAX + BW_CHUNK_MAX_LIMIT + 4096);
	bw_buf_init(&w->plain, (size_t)BW_CHUNK_MAX_LIMIT + 4096);
	return w;
}

/* The pool runs at most nthreads tasks at once and every task takes one
 * state, so the list made before submitting never runs dry. */
static struct wstate *wstate_get(struct ctx *c)
{
	pthread_mutex_lock(&c->mu);
	struct wstate *w = c->idle;
	if (w)
		c->idle = w->next;
	pthread_mutex_unlock(&c->mu);
	return w;
}

static void wstate_put(struct ctx *c, struct wstate *w)
{
	pthread_mutex_lock(&c->mu);
	w->next = c->idle;
	c->idle = w;
	pthread_mutex_unlock(&c->mu);
}

static size_t job_first(const struct job *j, size_t fi)
{
	return fi ? 0 : j->b0;
}

static size_t job_end(const struct job *j, size_t fi)
{
	return fi + 1 == j->nf ? j->b1 : j->f[fi]->n->ncontent;
}

/* End of the pack range worth reading for blob (fi, bi): later blobs of
 * the job that follow it in the same pack, over small gaps. */
static uint64_t run_end(const struct job *j, size_t fi, size_t bi)
{
	const struct seg *s = &j->f[fi]->segs[bi];
	uint64_t end = (uint64_t)s->poff + s->plen;
	for (int look = 0; look < LOOKAHEAD; look++) {
		if (++bi >= job_end(j, fi)) {
			for (fi++; fi < j->nf && job_first(j, fi) >= job_end(j, fi); fi++)
				;
			if (fi >= j->nf)
				break;
			bi = job_first(j, fi);
		}
		const struct seg *t = &j->f[fi]->segs[bi];
		if (t->pack != s->pack || t->off == OFF_UNKNOWN || t->poff < end ||
		    t->poff - end > GAP_MAX)
			continue;
		if ((uint64_t)t->poff + t->plen - s->poff > RUN_MAX)
			break;
		end = (uint64_t)t->poff + t->plen;
	}
	return end;
}

/* Stored bytes of blob (fi, bi): from a run the worker holds, or from a
 * new run read with one pread. */
static int fetch(struct ctx *c, struct wstate *w, const struct job *j,
                 size_t fi, size_t bi, const uint8_t **p)
{
	const struct seg *s = &j->f[fi]->segs[bi];
	struct run *v = NULL;
	for (int i = 0; i < NRUNS; i++) {
		struct run *u = &w->runs[i];
		if (u->ok && u->pack == s->pack && s->poff >= u->lo &&
		    (uint64_t)s->poff + s->plen <= u->lo + u->b.len) {
			u->used = ++w->tick;
			*p = u->b.data + (s->poff - u->lo);
			return 0;
		}
		if (!v || (v->ok && (!u->ok || u->used < v->used)))
			v = u;
	}
	const struct bw_id *pid = bw_index_pack_id(c->r->index, s->pack);
	char name[2 * BW_ID_LEN + 1];
	if (!pid)
		return bw_errf(BW_ENOENT, "pack number %u is not in the index", s->pack);
	bw_id_hex(pid, name);
	uint64_t end = run_end(j, fi, bi);
	v->ok = 0;
	bw_buf_reset(&v->b);
	int r = bw_be_read(c->r->be, BW_OBJ_PACK, name, s->poff,
	                   (size_t)(end - s->poff), &v->b);
	if (r && end > (uint64_t)s->poff + s->plen) {
		/* a truncated pack: this blob may still be whole */
		bw_err_clear();
		bw_buf_reset(&v->b);
		r = bw_be_read(c->r->be, BW_OBJ_PACK, name, s->poff, s->plen, &v->b);
	}
	if (r)
		return r;
	v->ok = 1;
	v->pack = s->pack;
	v->lo = s->poff;
	v->used = ++w->tick;
	*p = v->b.data;
	return 0;
}

static void damage(struct ctx *c, struct rfile *f, size_t bi, const char *why)
{
	const struct seg *s = &f->segs[bi];
	const struct bw_id *pid = s->pack != BW_PACK_NONE
	                                  ? bw_index_pack_id(c->r->index, s->pack)
	                                  : NULL;
	char hex[2 * BW_ID_LEN + 1], pk[2 * BW_ID_LEN + 1], where[96];
	bw_id_hex(&f->n->content[bi], hex);
	if (s->off != OFF_UNKNOWN && s->pack != BW_PACK_NONE)
		snprintf(where, sizeof where, "bytes %llu-%llu left as zeros",
		         (unsigned long long)s->off,
		         (unsigned long long)(s->off + s->raw));
	else
		snprintf(where, sizeof where, "its bytes are left as zeros");
	if (pid) {
		bw_id_hex(pid, pk);
		report(c, f->path, "blob %.16s in pack %.16s: %s; %s", hex, pk, why, where);
	} else {
		report(c, f->path, "blob %.16s: %s; %s", hex, why, where);
	}
	pthread_mutex_lock(&c->mu);
	f->damaged = 1;
	c->damaged = 1;
	pthread_mutex_unlock(&c->mu);
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (k == 0)
			return EIO;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int is_zero(const uint8_t *p, size_t n)
{
	return p[0] == 0 && !memcmp(p, p + 1, n - 1);
}

/* Write p at off; with sparse, whole aligned blocks of zeros are skipped
 * (the final ftruncate makes the size right and leaves holes). */
static int write_data(int fd, const uint8_t *p, size_t n, uint64_t off, int sparse)
{
	if (!sparse)
		return pwrite_all(fd, p, n, off);
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		while (i < n) {
			size_t mis = (size_t)((off + i) % ZERO_BLOCK);
			size_t step = mis ? ZERO_BLOCK - mis : ZERO_BLOCK;
			if (!mis && n - i >= ZERO_BLOCK && is_zero(p + i, ZERO_BLOCK))
				break;
			i += step < n - i ? step : n - i;
		}
		if (i > start) {
			int r = pwrite_all(fd, p + start, i - start, off + start);
			if (r)
				return r;
		}
		while (n - i >= ZERO_BLOCK && is_zero(p + i, ZERO_BLOCK))
			i += ZERO_BLOCK;
	}
	return 0;
}

/* Restore blob (fi, bi) into fd.  Damage is reported and leaves zeros;
 * returns non-zero only when writing failed (stop this file). */
static int write_blob(struct ctx *c, struct wstate *w, const struct job *j,
                      size_t fi, size_t bi, int fd, uint64_t *bytes)
{
	struct rfile *f = j->f[fi];
	const struct seg *s = &f->segs[bi];
	const uint8_t *p = NULL;
	int r;
	if (s->pack == BW_PACK_NONE) {
		damage(c, f, bi, "not in the index (lost)");
		return 0;
	}
	if (s->off == OFF_UNKNOWN) {
		damage(c, f, bi, "its place in the file is unknown (other blobs are lost)");
		return 0;
	}
	bw_err_clear();
	if ((r = fetch(c, w, j, fi, bi, &p)) ||
	    (r = bw_blob_decode(w->bc, c->r->keys, &f->n->content[bi], p,
	                        s->plen, s->raw, &w->plain))) {
		damage(c, f, bi, r == BW_EAUTH ? "damaged (authentication failed)"
		                               : errmsg(r));
		bw_err_clear();
		return 0;
	}
	if ((r = write_data(fd, w->plain.data, s->raw, s->off, c->o->sparse))) {
		report(c, f->path, "write failed at offset %llu: %s",
		       (unsigned long long)s->off, strerror(r));
		pthread_mutex_lock(&c->mu);
		f->damaged = 1;
		pthread_mutex_unlock(&c->mu);
		return 1;
	}
	*bytes += s->raw;
	return 0;
}

static int file_create(struct ctx *c, struct rfile *f)
{
	int fd = at_open(c, f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST && c->o->overwrite) {
		/* unlink rather than truncate: an old hard link elsewhere
		 * must not be written through */
		const char *name;
		int pfd = parent_open(c, f->path, &name);
		if (pfd >= 0 && !unlinkat(pfd, name, 0))
			fd = at_open(c, f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		int e = errno;
		parent_close(c, pfd);
		errno = e;
	}
	if (fd < 0) {
		if (errno == EEXIST)
			report(c, f->path, "already exists (use --overwrite to replace it)");
		else
			report(c, f->path, "cannot create: %s", strerror(errno));
	}
	return fd;
}

static void file_finish(struct ctx *c, struct rfile *f, int fd, uint64_t bytes)
{
	if ((c->o->sparse || f->damaged) && ftruncate(fd, (off_t)f->n->size))
		report(c, f->path, "cannot set the size: %s", strerror(errno));
	meta_fd(c, fd, f->path, f->n, f->uid, f->gid);
	count(c, &c->st.files, 1);
	make_links(c, f, fd);
	if (close(fd))
		report(c, f->path, "close failed: %s", strerror(errno));
	progress(c, 1, bytes, f->path, 0);
}

static void restore_part(struct ctx *c, struct wstate *w, const struct job *j,
                         size_t fi)
{
	struct rfile *f = j->f[fi];
	int split = f->fd >= 0;
	int fd = split ? f->fd : file_create(c, f);
	uint64_t bytes = 0;
	if (fd < 0) {
		f->failed = 1;
		links_failed(c, f);
		progress(c, 1, 0, f->path, 0);
		return;
	}
	for (size_t bi = job_first(j, fi); bi < job_end(j, fi); bi++)
		if (write_blob(c, w, j, fi, bi, fd, &bytes))
			break;
	count(c, &c->st.bytes, bytes);
	if (split) {
		pthread_mutex_lock(&c->mu);
		int last = --f->parts_left == 0;
		pthread_mutex_unlock(&c->mu);
		progress(c, 0, bytes, f->path, 0);
		if (!last)
			return;
		bytes = 0;
	}
	file_finish(c, f, fd, bytes);
}

/* ---- verification ---- */

static void verify_links(struct ctx *c, struct rfile *f, const struct stat *st)
{
	for (struct rfile *l = f->links; l; l = l->next_link) {
		struct stat ls;
		int fd = at_open(c, l->path, O_PATH, 0);
		if (fd < 0 || fstat(fd, &ls) || ls.st_ino != st->st_ino ||
		    ls.st_dev != st->st_dev)
			report(c, l->path, "verify: not a hard link to %s", f->path);
		else
			count(c, &c->st.verified, 1);
		if (fd >= 0)
			close(fd);
	}
}

/* Re-read a restored file and compare each blob's ID with the snapshot's. */
static void verify_file(struct ctx *c, struct wstate *w, struct rfile *f)
{
	const struct bw_node *n = f->n;
	struct stat st;
	int bad = 0, r;
	/* O_NOATIME: reading must not move the atime just restored */
	int fd = at_open(c, f->path, O_RDONLY | O_NOATIME, 0);
	if (fd < 0 && errno == EPERM)
		fd = at_open(c, f->path, O_RDONLY, 0);
	if (fd < 0) {
		report(c, f->path, "verify: cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) || (uint64_t)st.st_size != n->size) {
		report(c, f->path, "verify: size is %llu, the snapshot has %llu",
		       (unsigned long long)st.st_size, (unsigned long long)n->size);
		bad = 1;
	}
	for (size_t i = 0; i < n->ncontent && !bad; i++) {
		const struct seg *s = &f->segs[i];
		struct bw_id id;
		bw_buf_reset(&w->plain);
		if ((r = bw_buf_reserve(&w->plain, s->raw)) ||
		    (s->raw && (r = bw_pread_full(fd, w->plain.data, s->raw, s->off)))) {
			report(c, f->path, "verify: cannot read bytes %llu-%llu: %s",
			       (unsigned long long)s->off,
			       (unsigned long long)(s->off + s->raw), bw_strerror(r));
			bad = 1;
			break;
		}
		bw_mac_id(c->r->keys, w->plain.data, s->raw, &id);
		if (bw_ct_cmp(id.b, n->content[i].b, BW_ID_LEN)) {
			report(c, f->path, "verify: bytes %llu-%llu differ from the snapshot",
			       (unsigned long long)s->off,
			       (unsigned long long)(s->off + s->raw));
			bad = 1;
		}
	}
	if (!bad) {
		count(c, &c->st.verified, 1);
		verify_links(c, f, &st);
	}
	close(fd);
}

/* ---- scheduling ---- */

static void job_task(void *arg)
{
	struct job *j = arg;
	struct ctx *c = j->c;
	struct wstate *w = wstate_get(c);
	for (size_t fi = 0; fi < j->nf; fi++) {
		if (j->verify)
			verify_file(c, w, j->f[fi]);
		else
			restore_part(c, w, j, fi);
	}
	wstate_put(c, w);
	free(j->f);
	free(j);
}

static int submit(struct ctx *c, struct rfile **f, size_t nf, size_t b0,
                  size_t b1, int verify)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j || !(j->f = malloc(nf * sizeof *f))) {
		free(j);
		return BW_ENOMEM;
	}
	memcpy(j->f, f, nf * sizeof *f);
	j->c = c;
	j->nf = nf;
	j->b0 = b0;
	j->b1 = b1;
	j->verify = verify;
	int r = bw_pool_submit(c->pool, job_task, j);
	if (r) {
		free(j->f);
		free(j);
	}
	return r;
}

/* A big file: created here, then written in ranges by several workers
 * through one shared descriptor; the last part to finish closes it. */
static int submit_split(struct ctx *c, struct rfile *f)
{
	size_t nc = f->n->ncontent, parts = 0, b0 = 0;
	uint64_t acc = 0;
	for (size_t i = 0; i < nc; i++) {
		acc += f->segs[i].raw;
		if (acc >= SPLIT_PART || i + 1 == nc) {
			parts++;
			acc = 0;
		}
	}
	int fd = file_create(c, f);
	if (fd < 0) {
		f->failed = 1;
		links_failed(c, f);
		progress(c, 1, 0, f->path, 0);
		return 0;
	}
	f->fd = fd;
	f->parts_left = (int)parts;
	acc = 0;
	for (size_t i = 0; i < nc; i++) {
		acc += f->segs[i].raw;
		if (acc >= SPLIT_PART || i + 1 == nc) {
			int r = submit(c, &f, 1, b0, i + 1, 0);
			if (r)
				return r;
			b0 = i + 1;
			acc = 0;
		}
	}
	return 0;
}

static int submit_all(struct ctx *c, int verify)
{
	struct rfile *batch[BATCH_FILES];
	size_t nb = 0;
	uint64_t bytes = 0;
	int r = 0;
	for (size_t i = 0; i < c->nfiles && !r; i++) {
		struct rfile *f = c->files[i];
		if (f->primary || (verify && (f->failed || f->damaged)))
			continue;
		if (!verify && c->nthreads > 1 && f->n->ncontent > 1 &&
		    f->n->size >= 2 * SPLIT_PART) {
			r = submit_split(c, f);
			continue;
		}
		batch[nb++] = f;
		bytes += f->n->size;
		if (nb == BATCH_FILES || bytes >= BATCH_BYTES) {
			r = submit(c, batch, nb, 0, batch[nb - 1]->n->ncontent, verify);
			nb = 0;
			bytes = 0;
		}
	}
	if (!r && nb)
		r = submit(c, batch, nb, 0, batch[nb - 1]->n->ncontent, verify);
	return r;
}

/* ---- directories, last ---- */

static void dir_meta(struct ctx *c)
{
	/* creation order is pre-order: backwards, children come first */
	for (size_t i = c->ndirs; i-- > 0;) {
		struct rdir *d = &c->dirs[i];
		int fd = at_open(c, d->path, O_RDONLY | O_DIRECTORY, 0);
		if (fd < 0) {
			report(c, d->path, "cannot open directory to set its metadata: %s",
			       strerror(errno));
			continue;
		}
		meta_fd(c, fd, d->path, d->n, d->uid, d->gid);
		close(fd);
	}
}

/* ---- entry point ---- */

static void ctx_release(struct ctx *c)
{
	bw_pool_free(c->pool);
	while (c->idle) {
		struct wstate *w = c->idle;
		c->idle = w->next;
		wstate_free(w);
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		struct rfile *f = c->files[i];
		free(f->segs);
		free(f->path);
		free(f);
	}
	free(c->files);
	for (size_t i = 0; i < c->ndirs; i++)
		free(c->dirs[i].path);
	free(c->dirs);
	for (size_t i = 0; i < c->ntrees; i++) {
		bw_tree_release(c->trees[i]);
		free(c->trees[i]);
	}
	free(c->trees);
	for (size_t i = 1; i < c->nlv; i++)
		if (c->lv[i].fd >= 0)
			close(c->lv[i].fd);
	free(c->lv);
	bw_buf_release(&c->path);
	if (c->rootfd >= 0)
		close(c->rootfd);
	pthread_mutex_destroy(&c->mu);
}

static int ctx_init(struct ctx *c, struct bw_repo *r, const struct bw_restore_opts *o)
{
	memset(c, 0, sizeof *c);
	c->r = r;
	c->o = o;
	c->rootfd = -1;
	c->have_openat2 = 1;
	c->chown_ok = !o->no_owner && geteuid() == 0;
	c->nthreads = o->threads > 0 ? o->threads : bw_ncpu();
	pthread_mutex_init(&c->mu, NULL);
	bw_buf_init(&c->path, (size_t)1 << 20);
	if (!(c->lv = calloc(16, sizeof *c->lv)))
		return BW_ENOMEM;
	c->caplv = 16;
	if (bw_mkdir_p(o->target, 0700))
		return bw_errf(BW_EIO, "%s: cannot create the target directory",
		               o->target);
	c->rootfd = open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		return bw_errf(bw_from_errno(errno), "%s: cannot open the target: %s",
		               o->target, strerror(errno));
	c->nlv = 1;
	c->lv[0].fd = c->rootfd;
	return 0;
}

/* Phase 2 (and the optional verification pass). */
static int write_files(struct ctx *c)
{
	int rc = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		if (!c->files[i]->primary)
			c->prog.bytes_total += c->files[i]->n->size;
	progress(c, 0, 0, NULL, 0);
	for (int i = 0; i < c->nthreads; i++) {
		struct wstate *w = wstate_new();
		if (!w)
			return BW_ENOMEM;
		wstate_put(c, w);
	}
	if (!(c->pool = bw_pool_new(c->nthreads)))
		return BW_ENOMEM;
	rc = submit_all(c, 0);
	bw_pool_wait(c->pool);
	if (!rc && c->o->verify) {
		rc = submit_all(c, 1);
		bw_pool_wait(c->pool);
	}
	return rc;
}

int bw_restore(struct bw_repo *r, const struct bw_snapshot *s,
               const struct bw_restore_opts *o, struct bw_restore_stats *st)
{
	struct ctx c;
	int rc;
	memset(st, 0, sizeof *st);
	if (!o->target || !*o->target)
		return bw_errf(BW_EINVAL, "restore: no target directory given");
	if ((rc = ctx_init(&c, r, o)))
		goto out;
	if ((rc = bw_repo_load_index(r)))
		goto out;
	const char *sub = o->subpath;
	while (sub && *sub == '/')
		sub++;
	if ((rc = walk(&c, &s->tree, 0, sub)))
		goto out;
	if (sub && *sub && !c.sub_found) {
		rc = bw_errf(BW_ENOENT, "%s: no such path in the snapshot", o->subpath);
		goto out;
	}
	if ((rc = group_links(&c)) || (rc = write_files(&c)))
		goto out;
	dir_meta(&c);
	progress(&c, 0, 0, NULL, 1);
	if (c.damaged)
		rc = bw_errf(BW_EDAMAGED, "some files could not be restored whole "
		             "from damaged or missing data (see the errors above)");
out:
	ctx_release(&c);
	*st = c.st;
	return rc;
}
