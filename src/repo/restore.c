/* Restore: recreate a snapshot's files under a target directory.
 *
 * One thread walks the trees depth first, creates directories (mode 0700
 * until the end), symlinks, FIFOs, devices and sockets, and lists regular
 * files, with each blob's place in the packs (from the index) and in the
 * file, into a batch of bounded size.  A full batch goes to a pool of
 * workers (restore_write.c) while the walk lists the next one; the oldest
 * batch is then waited for, verified (--verify), its hard links are made
 * and it is freed.  Nothing listed points into a tree, so
 * a tree is released as soon as the walk leaves it: memory depends on the
 * depth of the tree and the batch size, not on the number of files.
 * Directory metadata is kept (a copy, per directory) and set at the end,
 * deepest first, so that creating children does not move a directory's
 * times afterwards.  With a progress callback, a first walk only counts
 * the totals.
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
#include "restore.h"

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


/* ---- reporting ---- */

void bw_rs_report(struct ctx *c, const char *path, const char *fmt, ...)
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
void bw_rs_progress(struct ctx *c, uint64_t files, uint64_t bytes,
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

void bw_rs_count(struct ctx *c, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&c->mu);
	*field += n;
	pthread_mutex_unlock(&c->mu);
}

const char *bw_rs_errmsg(int r)
{
	return *bw_err_msg() ? bw_err_msg() : bw_strerror(r);
}

/* ---- paths under the target ---- */

/* Open path ("/a/b", inside the snapshot) under the target without
 * following any symlink on the way. */
int bw_rs_at_open(struct ctx *c, const char *path, int flags, mode_t mode)
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
int bw_rs_parent_open(struct ctx *c, const char *path, const char **name)
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
	int fd = bw_rs_at_open(c, p, O_PATH | O_DIRECTORY, 0);
	free(p);
	return fd;
}

void bw_rs_parent_close(struct ctx *c, int fd)
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

/* The metadata of n with its owner resolved.  With copy, the xattrs are
 * copied into one block (m->own) so that the tree can go; without, they
 * point into the node. */
static int meta_from(struct ctx *c, const struct bw_node *n, int copy,
                     struct meta *m)
{
	memset(m, 0, sizeof *m);
	m->mode = n->mode;
	m->atime_ns = n->atime_ns;
	m->mtime_ns = n->mtime_ns;
	resolve_owner(c, n, &m->uid, &m->gid);
	m->xattrs = n->xattrs;
	m->nxattrs = n->nxattrs;
	if (!copy || !n->nxattrs)
		return 0;
	size_t sz = n->nxattrs * sizeof *n->xattrs;
	for (size_t i = 0; i < n->nxattrs; i++)
		sz += n->xattrs[i].name_len + n->xattrs[i].value_len;
	struct bw_xattr *x = malloc(sz);
	if (!x)
		return BW_ENOMEM;
	char *p = (char *)(x + n->nxattrs);
	for (size_t i = 0; i < n->nxattrs; i++) {
		const struct bw_xattr *y = &n->xattrs[i];
		x[i].name_len = y->name_len;
		x[i].value_len = y->value_len;
		memcpy(p, y->name, y->name_len);
		x[i].name = p;
		p += y->name_len;
		if (y->value_len)
			memcpy(p, y->value, y->value_len);
		x[i].value = (const uint8_t *)p;
		p += y->value_len;
	}
	m->xattrs = x;
	m->own = x;
	return 0;
}

static void meta_times(const struct meta *m, struct timespec ts[2])
{
	ts[0] = ns_ts(m->atime_ns ? m->atime_ns : m->mtime_ns);
	ts[1] = ns_ts(m->mtime_ns);
}

/* Set xattrs through fd, or on lpath (not following) when fd < 0. */
static void set_xattrs(struct ctx *c, int fd, const char *lpath,
                       const char *path, const struct meta *m)
{
	char name[XATTR_NAME_MAX + 1];
	for (size_t i = 0; i < m->nxattrs; i++) {
		const struct bw_xattr *x = &m->xattrs[i];
		if (!x->name_len || x->name_len > XATTR_NAME_MAX ||
		    memchr(x->name, 0, x->name_len)) {
			bw_rs_report(c, path, "extended attribute with an invalid name skipped");
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
				bw_rs_report(c, path, "the target file system does not support "
				             "extended attributes (%s): xattrs and ACLs are "
				             "not restored (reported once)", name);
			return;
		}
		bw_rs_report(c, path, "cannot set extended attribute %s: %s", name,
		             strerror(errno));
	}
}

/* Metadata of a file or directory through its descriptor. */
void bw_rs_meta_fd(struct ctx *c, int fd, const char *path,
                   const struct meta *m)
{
	struct timespec ts[2];
	struct stat cur;
	/* most files already have the wanted owner (root restoring root's
	 * files): an fstat is cheaper than an fchown, which dirties the inode */
	if (c->chown_ok && (fstat(fd, &cur) || cur.st_uid != m->uid || cur.st_gid != m->gid) &&
	    fchown(fd, m->uid, m->gid))
		bw_rs_report(c, path, "cannot change owner to %u:%u: %s", m->uid,
		             m->gid, strerror(errno));
	set_xattrs(c, fd, NULL, path, m);
	if (fchmod(fd, m->mode & 07777))
		bw_rs_report(c, path, "cannot set mode %04o: %s", m->mode & 07777,
		             strerror(errno));
	meta_times(m, ts);
	if (futimens(fd, ts))
		bw_rs_report(c, path, "cannot set times: %s", strerror(errno));
}

/* Metadata of a symlink, FIFO, device or socket just made in pfd. */
static void meta_at(struct ctx *c, int pfd, const char *name,
                    const char *path, const struct bw_node *n)
{
	struct timespec ts[2];
	struct meta m;
	(void)meta_from(c, n, 0, &m); /* no copy: cannot fail */
	if (c->chown_ok && fchownat(pfd, name, m.uid, m.gid, AT_SYMLINK_NOFOLLOW))
		bw_rs_report(c, path, "cannot change owner to %u:%u: %s", m.uid,
		             m.gid, strerror(errno));
	if (m.nxattrs) {
		struct bw_buf lp;
		bw_buf_init(&lp, 0);
		if (!bw_buf_printf(&lp, "%s%s", c->o->target, path))
			set_xattrs(c, -1, bw_buf_cstr(&lp), path, &m);
		bw_buf_release(&lp);
	}
	/* a symlink's mode means nothing on Linux and cannot be set */
	if (n->type != BW_NODE_SYMLINK && fchmodat(pfd, name, m.mode & 07777, 0))
		bw_rs_report(c, path, "cannot set mode %04o: %s", m.mode & 07777,
		             strerror(errno));
	meta_times(&m, ts);
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW))
		bw_rs_report(c, path, "cannot set times: %s", strerror(errno));
}

/* ---- the walk ---- */

static const char *cur_path(struct ctx *c)
{
	return bw_buf_cstr(&c->path);
}

/* Make room for one more element of size sz in *v. */
static int grow(void *v, size_t n, size_t *cap, size_t sz, size_t first)
{
	void **pv = v;
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : first;
	void *w = realloc(*pv, nc * sz);
	if (!w)
		return BW_ENOMEM;
	*pv = w;
	*cap = nc;
	return 0;
}

/* mkdir name in pfd (or take an existing directory); returns its fd. */
static int make_dir(struct ctx *c, int pfd, const char *name, const char *path)
{
	struct stat st;
	if (mkdirat(pfd, name, 0700)) {
		if (errno != EEXIST) {
			bw_rs_report(c, path, "cannot create directory: %s", strerror(errno));
			return -1;
		}
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(st.st_mode)) {
			if (!c->o->overwrite) {
				bw_rs_report(c, path, "exists and is not a directory "
				       "(use --overwrite to replace it)");
				return -1;
			}
			if (unlinkat(pfd, name, 0) || mkdirat(pfd, name, 0700)) {
				bw_rs_report(c, path, "cannot replace with a directory: %s",
				       strerror(errno));
				return -1;
			}
		}
	}
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		bw_rs_report(c, path, "cannot open directory: %s", strerror(errno));
	return fd;
}

/* Create every directory level not made yet (lazily: with includes, a
 * directory is made only when something inside it is restored).
 * 1: a level could not be made (reported), skip what is below it. */
static int ensure_dirs(struct ctx *c)
{
	if (c->counting)
		return 0;
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
		struct rdir *d = NULL;
		if (c->ndirs < UINT32_MAX - 1 && !grow(&c->dirs, c->ndirs, &c->capdirs, sizeof *c->dirs, 64)) {
			d = &c->dirs[c->ndirs];
			if (meta_from(c, n, 1, &d->m))
				d = NULL;
		}
		if (!d) {
			free(p);
			return BW_ENOMEM;
		}
		d->path = p;
		l->dir = (uint32_t)c->ndirs++;
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
static int file_segs(struct ctx *c, struct rfile *f, const struct bw_node *n)
{
	if (!n->ncontent)
		return 0;
	if (!(f->segs = calloc(n->ncontent, sizeof *f->segs)))
		return BW_ENOMEM;
	size_t first_missing = n->ncontent, last_missing = 0;
	for (size_t i = 0; i < n->ncontent; i++) {
		struct bw_index_entry e;
		struct seg *s = &f->segs[i];
		s->id = n->content[i];
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
		s->grouped = e.grouped;
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
		bw_rs_report(c, f->path, "blobs hold %llu bytes but the file had %llu "
		       "(snapshot damaged)", (unsigned long long)off,
		       (unsigned long long)n->size);
		f->damaged = 1;
		pthread_mutex_lock(&c->mu);
		c->damaged = 1;
		pthread_mutex_unlock(&c->mu);
	}
	f->nseg = n->ncontent;
	return 0;
}

static int link_find(struct ctx *c, const struct bw_node *n, size_t *idx,
                     int *first);
static struct batch *fill(struct ctx *c);
static int batch_full(const struct batch *b);
static int rotate(struct ctx *c, int last);

/* Another name of a file listed before: linked once its batch is done. */
static int add_link(struct ctx *c, size_t link)
{
	struct batch *b = fill(c);
	char *p = strdup(cur_path(c));
	if (!p || grow(&b->l, b->nl, &b->capl, sizeof *b->l, 64)) {
		free(p);
		return BW_ENOMEM;
	}
	b->l[b->nl].path = p;
	b->l[b->nl].link = link;
	b->nl++;
	return 0;
}

static int add_rfile(struct ctx *c, const struct bw_node *n, size_t link)
{
	struct batch *b = fill(c);
	struct rfile *f = calloc(1, sizeof *f);
	int r = BW_ENOMEM;
	if (!f)
		return r;
	f->fd = -1;
	f->size = n->size;
	f->link = link;
	if (!(f->path = strdup(cur_path(c))) || (r = meta_from(c, n, 1, &f->m)) ||
	    (r = file_segs(c, f, n)) ||
	    (r = grow(&b->f, b->n, &b->cap, sizeof *b->f, 256)))
		goto fail;
	if (link != SIZE_MAX) {
		struct hlink *h = &c->links[link];
		if ((r = bw_buf_append(&c->lnames, c->name, strlen(c->name) + 1)))
			goto fail;
		h->name = c->lnames.len - strlen(c->name) - 1;
		h->dir = c->nlv > 1 ? c->lv[c->nlv - 1].dir : UINT32_MAX;
	}
	b->f[b->n++] = f;
	b->bytes += f->size;
	return 0;
fail:
	if (!r)
		r = BW_ENOMEM;
	free(f->segs);
	free(f->m.own);
	free(f->path);
	free(f);
	return r;
}

/* A regular file: into the batch being listed, or, for a second name of
 * a file with the same content, a link to make after it.  The counting
 * pass only adds up the totals. */
static int add_file(struct ctx *c, const struct bw_node *n)
{
	size_t link = SIZE_MAX;
	int first = 1, r;
	if (n->nlink > 1 && (r = link_find(c, n, &link, &first)))
		return r;
	if (c->counting) {
		c->prog.files_total++;
		if (first)
			c->prog.bytes_total += n->size;
		return 0;
	}
	r = first ? add_rfile(c, n, link) : add_link(c, link);
	if (!r && batch_full(fill(c)))
		r = rotate(c, 0);
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
			bw_rs_report(c, path, "symlink with an invalid target skipped");
			return 0;
		}
		if (!(target = strndup(n->target, n->target_len)))
			return BW_ENOMEM;
	}
	if (make_special(c, pfd, c->name, n, target)) {
		if (errno == EEXIST)
			bw_rs_report(c, path, "already exists (use --overwrite to replace it)");
		else if (errno == EPERM && (n->type == BW_NODE_CHR || n->type == BW_NODE_BLK))
			bw_rs_report(c, path, "cannot create device node: %s (needs root)",
			       strerror(errno));
		else
			bw_rs_report(c, path, "cannot create: %s", strerror(errno));
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
	if (c->counting && n->type != BW_NODE_FILE)
		return 0;
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
		bw_rs_report(c, cur_path(c), "unknown node type %u skipped", n->type);
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

/* The counting pass reports nothing: the restore that follows will. */
static int walk(struct ctx *c, const struct bw_id *tid, int sel, const char *sub)
{
	struct bw_tree t;
	int r;
	memset(&t, 0, sizeof t);
	bw_err_clear();
	if ((r = bw_repo_load_tree(c->r, tid, &t))) {
		char hex[2 * BW_ID_LEN + 1];
		bw_id_hex(tid, hex);
		if (!c->counting) {
			bw_rs_report(c, c->path.len ? cur_path(c) : "/",
			             "directory contents lost: tree %.16s: %s", hex,
			             bw_rs_errmsg(r));
			pthread_mutex_lock(&c->mu);
			c->damaged = 1;
			pthread_mutex_unlock(&c->mu);
		}
		bw_err_clear();
		return r == BW_ENOMEM ? r : 0;
	}
	r = 0;
	for (size_t i = 0; i < t.n && !r; i++) {
		const struct bw_node *n = &t.nodes[i];
		size_t plen = c->path.len;
		if (!name_ok(n->name, n->name_len)) {
			if (!c->counting)
				bw_rs_report(c, c->path.len ? cur_path(c) : "/",
				             "entry with an invalid name skipped");
			continue;
		}
		if ((r = bw_buf_put_u8(&c->path, '/')) ||
		    (r = bw_buf_append(&c->path, n->name, n->name_len)))
			break;
		r = visit(c, n, sel, sub);
		c->path.len = plen;
	}
	/* nothing listed points into the tree: it goes now */
	bw_tree_release(&t);
	return r;
}

/* ---- hard links ----
 * Files with nlink > 1 and the same (dev, ino) become links to the first
 * of them listed, unless their content differs (a file changed between
 * reading two of its names keeps its own).  c->links keeps, per (dev,
 * ino), the size, a MAC of the content IDs and the first name; later
 * names are linked when their batch is done, by which time the first
 * name's batch (the same or an earlier one) is complete. */

static size_t link_slot(const struct ctx *c, uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);
	h ^= h >> 29;
	return (size_t)h & (c->lhcap - 1);
}

static int link_rehash(struct ctx *c)
{
	size_t nc = c->lhcap ? c->lhcap * 2 : 256;
	uint32_t *v = calloc(nc, sizeof *v);
	if (!v)
		return BW_ENOMEM;
	free(c->lhash);
	c->lhash = v;
	c->lhcap = nc;
	for (size_t i = 0; i < c->nlinks; i++) {
		size_t k = link_slot(c, c->links[i].dev, c->links[i].ino);
		while (v[k])
			k = (k + 1) & (nc - 1);
		v[k] = (uint32_t)(i + 1);
	}
	return 0;
}

/* *idx: n's entry, *first: n is its first name.  *idx is SIZE_MAX when n
 * differs from the first name: it is restored as a file of its own. */
static int link_find(struct ctx *c, const struct bw_node *n, size_t *idx,
                     int *first)
{
	static const struct bw_id none;
	struct bw_id mac;
	uint64_t d;
	int r;
	bw_mac_id(c->r->keys, n->ncontent ? (const void *)n->content : &none,
	          n->ncontent * sizeof *n->content, &mac);
	memcpy(&d, mac.b, sizeof d);
	if (2 * (c->nlinks + 1) > c->lhcap && (r = link_rehash(c)))
		return r;
	size_t k = link_slot(c, n->dev, n->ino);
	for (; c->lhash[k]; k = (k + 1) & (c->lhcap - 1)) {
		struct hlink *h = &c->links[c->lhash[k] - 1];
		if (h->dev != n->dev || h->ino != n->ino)
			continue;
		*first = 1;
		*idx = SIZE_MAX;
		if (h->size == n->size && h->digest == d) {
			*first = 0;
			*idx = c->lhash[k] - 1;
		}
		return 0;
	}
	if (c->nlinks >= UINT32_MAX - 1 ||
	    grow(&c->links, c->nlinks, &c->caplinks, sizeof *c->links, 64))
		return BW_ENOMEM;
	struct hlink *h = &c->links[c->nlinks];
	memset(h, 0, sizeof *h);
	h->dev = n->dev;
	h->ino = n->ino;
	h->size = n->size;
	h->digest = d;
	h->name = UINT64_MAX;
	h->dir = UINT32_MAX;
	c->lhash[k] = (uint32_t)++c->nlinks;
	*idx = c->nlinks - 1;
	*first = 1;
	return 0;
}

static void links_release(struct ctx *c)
{
	bw_buf_release(&c->lnames);
	free(c->links);
	free(c->lhash);
	c->links = NULL;
	c->lhash = NULL;
	c->nlinks = c->caplinks = c->lhcap = 0;
}

static void verify_link(struct ctx *c, int fd, const struct plink *l,
                        const char *to)
{
	struct stat a, b;
	int lfd = bw_rs_at_open(c, l->path, O_PATH, 0);
	if (lfd < 0 || fstat(fd, &a) || fstat(lfd, &b) || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev)
		bw_rs_report(c, l->path, "verify: not a hard link to %s", to);
	else
		bw_rs_count(c, &c->st.verified, 1);
	if (lfd >= 0)
		close(lfd);
}

/* linkat the complete file fd (named to) as l->path. */
static int link_to(struct ctx *c, int fd, const char *to, const struct plink *l)
{
	char proc[64];
	const char *name;
	int pfd = bw_rs_parent_open(c, l->path, &name), r = -1;
	if (pfd < 0) {
		bw_rs_report(c, l->path, "cannot open its directory: %s",
		             strerror(errno));
		return -1;
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	for (int tries = 0; tries < 2; tries++) {
		r = linkat(AT_FDCWD, proc, pfd, name, AT_SYMLINK_FOLLOW);
		if (r && errno == ENOENT) /* no /proc: by name */
			r = linkat(c->rootfd, to + 1, pfd, name, 0);
		if (!r || errno != EEXIST || !c->o->overwrite || tries)
			break;
		if (unlinkat(pfd, name, 0))
			break;
	}
	if (r)
		bw_rs_report(c, l->path, "cannot make hard link to %s: %s", to,
		             errno == EEXIST ? "already exists (use --overwrite)"
		                             : strerror(errno));
	bw_rs_parent_close(c, pfd);
	return r;
}

/* The first name of h: its directory's path and its last component. */
static int link_path(struct ctx *c, const struct hlink *h, struct bw_buf *out)
{
	const char *dir = h->dir == UINT32_MAX ? "" : c->dirs[h->dir].path;
	return bw_buf_printf(out, "%s/%s", dir,
	                     (const char *)c->lnames.data + h->name);
}

static void make_link(struct ctx *c, const struct plink *l)
{
	const struct hlink *h = &c->links[l->link];
	struct bw_buf to;
	int fd = -1;
	bw_buf_init(&to, (size_t)1 << 20);
	if (h->name == UINT64_MAX || link_path(c, h, &to)) {
		bw_rs_report(c, l->path, "not restored: a hard link to a file "
		             "that was not listed");
		goto out;
	}
	if (h->failed) {
		bw_rs_report(c, l->path, "not restored: it is a hard link to %s, "
		             "which could not be created", bw_buf_cstr(&to));
		goto out;
	}
	/* by descriptor: no symlink is followed on the way to it */
	if ((fd = bw_rs_at_open(c, bw_buf_cstr(&to), O_PATH, 0)) < 0) {
		bw_rs_report(c, l->path, "cannot open %s to link to it: %s",
		             bw_buf_cstr(&to), strerror(errno));
		goto out;
	}
	if (link_to(c, fd, bw_buf_cstr(&to), l))
		goto out;
	bw_rs_count(c, &c->st.files, 1);
	if (c->o->verify)
		verify_link(c, fd, l, bw_buf_cstr(&to));
out:
	if (fd >= 0)
		close(fd);
	bw_buf_release(&to);
	bw_rs_progress(c, 1, 0, l->path, 0);
}

/* ---- batches ----
 * The walk lists files into one batch while the workers write the two
 * before it (one written, one queued, so that they never wait for the
 * walk); when it is full the oldest is waited for and finished
 * (verified, its links made, freed).  So at most NBATCH batches of files
 * are in memory, whatever the size of the snapshot. */

#define BATCH_FILES_MAX 1024
#define BATCH_BYTES_MAX ((uint64_t)64 << 20)

static int batch_full(const struct batch *b)
{
	return b->n + b->nl >= BATCH_FILES_MAX || b->bytes >= BATCH_BYTES_MAX;
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct rfile *f = b->f[i];
		free(f->segs);
		free(f->m.own);
		free(f->path);
		free(f);
	}
	for (size_t i = 0; i < b->nl; i++)
		free(b->l[i].path);
	b->n = b->nl = 0;
	b->bytes = 0;
}

static void batch_release(struct batch *b)
{
	batch_clear(b);
	free(b->f);
	free(b->l);
}

/* The workers are done with b: verify it, make its links, free it. */
static int batch_finish(struct ctx *c, struct batch *b)
{
	int r = 0;
	if (c->o->verify) {
		r = bw_rs_submit_batch(c, b, 1);
		bw_rs_batch_wait(c, b);
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->f[i]->link != SIZE_MAX)
			c->links[b->f[i]->link].failed = b->f[i]->failed;
	for (size_t i = 0; i < b->nl && !r; i++)
		make_link(c, &b->l[i]);
	batch_clear(b);
	return r;
}

static struct batch *fill(struct ctx *c)
{
	return &c->b[(c->bhead + c->nfly) % NBATCH];
}

/* Hand the batch being listed to the workers, then finish the oldest
 * batches (all of them when last) while keeping one queued behind the
 * one being written, so that the workers never wait for the walk. */
static int rotate(struct ctx *c, int last)
{
	struct batch *b = fill(c);
	int r = 0;
	if (b->n || b->nl) {
		c->nfly++;
		r = bw_rs_submit_batch(c, b, 0);
	}
	while (!r && c->nfly && (last || c->nfly == NBATCH)) {
		b = &c->b[c->bhead];
		bw_rs_batch_wait(c, b);
		r = batch_finish(c, b);
		c->bhead = (c->bhead + 1) % NBATCH;
		c->nfly--;
	}
	return r;
}

/* ---- directories, last ---- */

static void dir_meta(struct ctx *c)
{
	/* creation order is pre-order: backwards, children come first */
	for (size_t i = c->ndirs; i-- > 0;) {
		struct rdir *d = &c->dirs[i];
		int fd = bw_rs_at_open(c, d->path, O_RDONLY | O_DIRECTORY, 0);
		if (fd < 0) {
			bw_rs_report(c, d->path, "cannot open directory to set its "
			             "metadata: %s", strerror(errno));
			continue;
		}
		bw_rs_meta_fd(c, fd, d->path, &d->m);
		close(fd);
	}
}

/* ---- entry point ---- */

static void ctx_release(struct ctx *c)
{
	bw_rs_workers_free(c); /* waits for tasks that use the batches */
	for (int i = 0; i < NBATCH; i++)
		batch_release(&c->b[i]);
	links_release(c);
	for (size_t i = 0; i < c->ndirs; i++) {
		free(c->dirs[i].path);
		free(c->dirs[i].m.own);
	}
	free(c->dirs);
	for (size_t i = 1; i < c->nlv; i++)
		if (c->lv[i].fd >= 0)
			close(c->lv[i].fd);
	free(c->lv);
	bw_buf_release(&c->path);
	if (c->rootfd >= 0)
		close(c->rootfd);
	pthread_cond_destroy(&c->done);
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
	pthread_cond_init(&c->done, NULL);
	bw_buf_init(&c->path, (size_t)1 << 20);
	bw_buf_init(&c->lnames, SIZE_MAX / 2);
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

/* Progress totals: a first walk that only counts (trees are small next to
 * the data; only done when someone shows progress). */
static int count_totals(struct ctx *c, const struct bw_snapshot *s,
                        const char *sub)
{
	int r = 0;
	if (c->o->progress) {
		c->counting = 1;
		r = walk(c, &s->tree, 0, sub);
		c->counting = 0;
		c->sub_found = 0;
		links_release(c);
	}
	if (!r)
		bw_rs_progress(c, 0, 0, NULL, 0);
	return r;
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
	/* walk and write; the last rotation finishes every batch */
	if ((rc = count_totals(&c, s, sub)) || (rc = bw_rs_workers_new(&c)) ||
	    (rc = walk(&c, &s->tree, 0, sub)) || (rc = rotate(&c, 1)))
		goto out;
	if (sub && *sub && !c.sub_found) {
		rc = bw_errf(BW_ENOENT, "%s: no such path in the snapshot", o->subpath);
		goto out;
	}
	dir_meta(&c);
	bw_rs_progress(&c, 0, 0, NULL, 1);
	if (c.damaged)
		rc = bw_errf(BW_EDAMAGED, "some files could not be restored whole "
		             "from damaged or missing data (see the errors above)");
out:
	ctx_release(&c);
	*st = c.st;
	return rc;
}
