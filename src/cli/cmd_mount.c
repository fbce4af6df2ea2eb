/* bulwark mount: the repository's snapshots as a read-only FUSE file system.
 *
 *   /snapshots/<YYYY-MM-DDTHH:MM:SS>_<short id>/...   each snapshot's tree
 *   /snapshots/latest -> the newest snapshot's directory
 *   /ids/<short id>   -> ../snapshots/<its directory>
 *
 * FUSE runs single-threaded (-s): lookups go through a small cache of
 * decoded trees and a node pointer is only used until the next tree is
 * loaded.  A file's byte offset maps to a blob through the cumulative
 * plaintext lengths of its blobs (from the index); each open file keeps
 * the last two decoded blobs, which serves sequential reads. */
#include "treewalk.h"

#include <string.h>

#ifdef BW_HAVE_FUSE
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>

#include "../repo/repo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#endif

static void help(void)
{
	printf(
"Usage: bulwark mount [OPTIONS] MOUNTPOINT\n"
"\n"
"Show the repository's snapshots as a read-only file system at MOUNTPOINT\n"
"(an existing empty directory), using FUSE:\n"
"  MOUNTPOINT/snapshots/2026-11-28T01:02:03_1a2b3c4d/   one directory per\n"
"                    snapshot (local time and short ID) holding its files\n"
"                    with their saved modes, owners, times and xattrs\n"
"  MOUNTPOINT/snapshots/latest   symbolic link to the newest snapshot\n"
"  MOUNTPOINT/ids/1a2b3c4d       symbolic link to the snapshot's directory\n"
"Browse and copy files with any program.  New snapshots appear when the\n"
"snapshots directory is listed again (at most every 10 seconds).\n"
"\n"
"The command stays in the foreground serving the file system until it is\n"
"unmounted: `fusermount3 -u MOUNTPOINT`, or Ctrl-C / SIGTERM.  The kernel\n"
"checks access with the saved modes and owners (default_permissions).\n"
"\n"
"Options:\n"
"      --allow-other   let other users access the mount (as non-root needs\n"
"                      'user_allow_other' in /etc/fuse.conf)\n"
"      --foreground    stay in the foreground (the default; accepted for\n"
"                      compatibility)\n"
"\n"
"Exit codes: 0 unmounted cleanly, 1 error (no FUSE support, mount failed),\n"
"2 bad command line, 10/11 no repository / wrong passphrase.\n");
}

#ifdef BW_HAVE_FUSE

#define TREE_CACHE 128
#define SNAP_REFRESH_S 10.0
#define NAME_LEN 40

struct tslot {
	struct bw_id id;
	struct bw_tree t;
	uint64_t stamp;
	int used;
};

struct mnt {
	struct bw_repo *r;
	struct bw_snapshot *snaps;
	size_t nsnaps;
	char (*names)[NAME_LEN];
	char (*shorts)[9];
	double loaded;
	struct tslot cache[TREE_CACHE];
	uint64_t clock;
	int64_t mount_ns;
	uid_t uid;
	gid_t gid;
};

static struct mnt *mnt(void)
{
	return fuse_get_context()->private_data;
}

/* A decoded tree from the cache; valid until the next call. */
static int tree_get(struct mnt *m, const struct bw_id *id, const struct bw_tree **out)
{
	struct tslot *victim = &m->cache[0];
	for (size_t i = 0; i < TREE_CACHE; i++) {
		struct tslot *s = &m->cache[i];
		if (s->used && !memcmp(s->id.b, id->b, BW_ID_LEN)) {
			s->stamp = ++m->clock;
			*out = &s->t;
			return 0;
		}
		if (!s->used || (victim->used && s->stamp < victim->stamp))
			victim = s;
	}
	if (victim->used)
		bw_tree_release(&victim->t);
	memset(victim, 0, sizeof *victim);
	int rc = bw_repo_load_tree(m->r, id, &victim->t);
	if (rc) {
		bw_warn("mount: %s", *bw_err_msg() ? bw_err_msg() : bw_strerror(rc));
		bw_err_clear();
		memset(&victim->t, 0, sizeof victim->t);
		return -EIO;
	}
	victim->id = *id;
	victim->used = 1;
	victim->stamp = ++m->clock;
	*out = &victim->t;
	return 0;
}

static void snaps_set_names(struct mnt *m)
{
	for (size_t i = 0; i < m->nsnaps; i++) {
		char ts[32];
		struct tm tm;
		time_t t = (time_t)(m->snaps[i].time_ns / 1000000000);
		localtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
		cli_short_id(&m->snaps[i].id, m->shorts[i]);
		snprintf(m->names[i], NAME_LEN, "%s_%s", ts, m->shorts[i]);
	}
}

static int snaps_load(struct mnt *m)
{
	struct bw_snapshot *v;
	size_t n;
	int rc = bw_repo_snapshots(m->r, &v, &n);
	if (rc)
		return rc;
	void *names = calloc(n ? n : 1, sizeof *m->names);
	void *shorts = calloc(n ? n : 1, sizeof *m->shorts);
	if (!names || !shorts) {
		free(names);
		free(shorts);
		bw_snapshots_free(v, n);
		return BW_ENOMEM;
	}
	bw_snapshots_free(m->snaps, m->nsnaps);
	free(m->names);
	free(m->shorts);
	m->snaps = v;
	m->nsnaps = n;
	m->names = names;
	m->shorts = shorts;
	m->loaded = bw_mono_s();
	snaps_set_names(m);
	return 0;
}

static void snaps_refresh(struct mnt *m)
{
	if (bw_mono_s() - m->loaded < SNAP_REFRESH_S)
		return;
	int rc = snaps_load(m);
	if (rc) {
		bw_warn("mount: cannot reload the snapshot list: %s",
		        *bw_err_msg() ? bw_err_msg() : bw_strerror(rc));
		bw_err_clear();
	}
}

/* ---- path resolution ---- */

enum kind { K_ROOT, K_SNAPSHOTS, K_IDS, K_LINK, K_SNAP, K_NODE };

struct res {
	enum kind kind;
	size_t snap;
	const struct bw_node *node; /* K_NODE; valid until the next tree load */
	char link[NAME_LEN + 16];   /* K_LINK */
};

/* component [s, s+len) of a path, the rest in *p */
static const char *comp(const char **p, size_t *len)
{
	const char *s = *p;
	while (*s == '/')
		s++;
	const char *e = s;
	while (*e && *e != '/')
		e++;
	*p = e;
	*len = (size_t)(e - s);
	return s;
}

static int comp_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && !memcmp(s, lit, len);
}

static int find_snap(const struct mnt *m, const char *s, size_t len, int by_short)
{
	for (size_t i = 0; i < m->nsnaps; i++)
		if (comp_is(s, len, by_short ? m->shorts[i] : m->names[i]))
			return (int)i;
	return -1;
}

/* Walk the rest of the path below snapshot k's root tree. */
static int resolve_in_snap(struct mnt *m, size_t k, const char *p, struct res *out)
{
	struct bw_id dir = m->snaps[k].tree;
	size_t len;
	out->kind = K_SNAP;
	out->snap = k;
	for (const char *c = comp(&p, &len); len; c = comp(&p, &len)) {
		const struct bw_tree *t;
		if (out->kind == K_NODE && out->node->type != BW_NODE_DIR)
			return -ENOTDIR;
		int rc = tree_get(m, &dir, &t);
		if (rc)
			return rc;
		if (!(out->node = bw_tree_find(t, c, len)))
			return -ENOENT;
		out->kind = K_NODE;
		if (out->node->type == BW_NODE_DIR)
			dir = out->node->subtree;
	}
	return 0;
}

static int resolve(struct mnt *m, const char *path, struct res *out)
{
	const char *p = path;
	size_t len;
	memset(out, 0, sizeof *out);
	const char *c = comp(&p, &len);
	if (!len) {
		out->kind = K_ROOT;
		return 0;
	}
	int ids = comp_is(c, len, "ids");
	if (!ids && !comp_is(c, len, "snapshots"))
		return -ENOENT;
	out->kind = ids ? K_IDS : K_SNAPSHOTS;
	c = comp(&p, &len);
	if (!len)
		return 0;
	if (!ids && comp_is(c, len, "latest") && m->nsnaps) {
		out->kind = K_LINK;
		snprintf(out->link, sizeof out->link, "%s", m->names[m->nsnaps - 1]);
		return *p && comp(&p, &len) && len ? -ENOTDIR : 0;
	}
	int k = find_snap(m, c, len, ids);
	if (k < 0)
		return -ENOENT;
	if (ids) {
		out->kind = K_LINK;
		snprintf(out->link, sizeof out->link, "../snapshots/%s", m->names[k]);
		return *p && comp(&p, &len) && len ? -ENOTDIR : 0;
	}
	return resolve_in_snap(m, (size_t)k, p, out);
}

/* ---- attributes ---- */

static void set_time(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000;
		ts->tv_sec--;
	}
}

static void synth_attr(const struct mnt *m, struct stat *st, mode_t mode,
                       int64_t ns, nlink_t nlink, off_t size)
{
	st->st_mode = mode;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_nlink = nlink;
	st->st_size = size;
	set_time(&st->st_mtim, ns);
	st->st_atim = st->st_ctim = st->st_mtim;
}

/* 2 + subdirectories: what find(1) and ls expect of a directory */
static nlink_t dir_nlink(struct mnt *m, const struct bw_id *id)
{
	const struct bw_tree *t;
	nlink_t n = 2;
	if (tree_get(m, id, &t))
		return 1; /* "unknown", as several file systems report */
	for (size_t i = 0; i < t->n; i++)
		n += t->nodes[i].type == BW_NODE_DIR;
	return n;
}

static void node_attr(const struct bw_node *n, struct stat *st)
{
	st->st_mode = cli_node_st_mode(n);
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_nlink = n->nlink ? (nlink_t)n->nlink : 1;
	if (n->type == BW_NODE_FILE)
		st->st_size = (off_t)n->size;
	else if (n->type == BW_NODE_SYMLINK)
		st->st_size = (off_t)n->target_len;
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
	st->st_rdev = (dev_t)n->rdev;
	set_time(&st->st_mtim, n->mtime_ns);
	set_time(&st->st_atim, n->atime_ns);
	set_time(&st->st_ctim, n->ctime_ns);
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct mnt *m = mnt();
	struct res r;
	(void)fi;
	int rc = resolve(m, path, &r);
	if (rc)
		return rc;
	memset(st, 0, sizeof *st);
	int64_t newest = m->nsnaps ? m->snaps[m->nsnaps - 1].time_ns : m->mount_ns;
	switch (r.kind) {
	case K_ROOT: synth_attr(m, st, S_IFDIR | 0555, m->mount_ns, 4, 0); break;
	case K_SNAPSHOTS:
		synth_attr(m, st, S_IFDIR | 0555, newest, (nlink_t)(2 + m->nsnaps), 0);
		break;
	case K_IDS: synth_attr(m, st, S_IFDIR | 0555, newest, 2, 0); break;
	case K_LINK:
		synth_attr(m, st, S_IFLNK | 0777, newest, 1, (off_t)strlen(r.link));
		break;
	case K_SNAP: {
		const struct bw_snapshot *s = &m->snaps[r.snap];
		struct bw_id tree = s->tree;
		synth_attr(m, st, S_IFDIR | 0555, s->time_ns, 2, 0);
		st->st_nlink = dir_nlink(m, &tree);
		break;
	}
	case K_NODE: {
		struct bw_id sub = r.node->subtree;
		int dir = r.node->type == BW_NODE_DIR;
		node_attr(r.node, st); /* before dir_nlink: it may evict r.node */
		if (dir)
			st->st_nlink = dir_nlink(m, &sub);
		break;
	}
	}
	return 0;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct res r;
	int rc = resolve(mnt(), path, &r);
	if (rc)
		return rc;
	if (!size)
		return -EINVAL;
	const char *t;
	size_t n;
	if (r.kind == K_LINK) {
		t = r.link;
		n = strlen(r.link);
	} else if (r.kind == K_NODE && r.node->type == BW_NODE_SYMLINK) {
		t = r.node->target;
		n = r.node->target_len;
	} else {
		return -EINVAL;
	}
	if (n >= size)
		n = size - 1;
	memcpy(buf, t, n);
	buf[n] = 0;
	return 0;
}

static int fill_tree(struct mnt *m, const struct bw_id *id, void *buf,
                     fuse_fill_dir_t filler)
{
	const struct bw_tree *t;
	char name[BW_NAME_MAX + 1];
	int rc = tree_get(m, id, &t);
	if (rc)
		return rc;
	for (size_t i = 0; i < t->n; i++) {
		const struct bw_node *n = &t->nodes[i];
		struct stat st;
		memset(&st, 0, sizeof st);
		node_attr(n, &st);
		memcpy(name, n->name, n->name_len);
		name[n->name_len] = 0;
		if (filler(buf, name, &st, 0, 0))
			break;
	}
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
	struct mnt *m = mnt();
	struct res r;
	(void)off;
	(void)fi;
	(void)flags;
	int rc = resolve(m, path, &r);
	if (rc)
		return rc;
	if (r.kind == K_SNAPSHOTS || r.kind == K_IDS) {
		snaps_refresh(m);
		if ((rc = resolve(m, path, &r)))
			return rc;
	}
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	switch (r.kind) {
	case K_ROOT:
		filler(buf, "ids", NULL, 0, 0);
		filler(buf, "snapshots", NULL, 0, 0);
		return 0;
	case K_SNAPSHOTS:
		for (size_t i = 0; i < m->nsnaps; i++)
			filler(buf, m->names[i], NULL, 0, 0);
		if (m->nsnaps)
			filler(buf, "latest", NULL, 0, 0);
		return 0;
	case K_IDS:
		for (size_t i = 0; i < m->nsnaps; i++)
			filler(buf, m->shorts[i], NULL, 0, 0);
		return 0;
	case K_SNAP: {
		struct bw_id tree = m->snaps[r.snap].tree;
		return fill_tree(m, &tree, buf, filler);
	}
	case K_NODE:
		if (r.node->type != BW_NODE_DIR)
			return -ENOTDIR;
		struct bw_id sub = r.node->subtree;
		return fill_tree(m, &sub, buf, filler);
	case K_LINK:
		break;
	}
	return -ENOTDIR;
}

/* ---- files ---- */

struct blob_cache {
	size_t idx;
	int valid;
	struct bw_buf data;
};

struct ofile {
	struct bw_id *ids;
	uint64_t *ends; /* ends[i]: offset just past blob i */
	size_t n;
	struct blob_cache c[2];
	int next;
};

static void ofile_free(struct ofile *f)
{
	if (!f)
		return;
	for (int i = 0; i < 2; i++)
		bw_buf_release(&f->c[i].data);
	free(f->ids);
	free(f->ends);
	free(f);
}

static int ofile_new(struct mnt *m, const struct bw_node *n, struct ofile **out)
{
	struct ofile *f = calloc(1, sizeof *f);
	size_t k = n->ncontent;
	uint64_t end = 0;
	if (!f || !(f->ids = calloc(k ? k : 1, sizeof *f->ids)) ||
	    !(f->ends = calloc(k ? k : 1, sizeof *f->ends))) {
		ofile_free(f);
		return -ENOMEM;
	}
	f->n = k;
	for (size_t i = 0; i < k; i++) {
		struct bw_index_entry e;
		f->ids[i] = n->content[i];
		if (bw_index_lookup(m->r->index, &n->content[i], &e)) {
			char hex[2 * BW_ID_LEN + 1];
			bw_id_hex(&n->content[i], hex);
			bw_warn("mount: blob %.16s of file %.*s is not in the index "
			        "(run `bulwark check`)", hex, (int)n->name_len, n->name);
			ofile_free(f);
			return -EIO;
		}
		end += e.raw_length;
		f->ends[i] = end;
	}
	for (int i = 0; i < 2; i++)
		bw_buf_init(&f->c[i].data, (size_t)BW_CHUNK_MAX_LIMIT);
	*out = f;
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct mnt *m = mnt();
	struct res r;
	struct ofile *f;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	int rc = resolve(m, path, &r);
	if (rc)
		return rc;
	if (r.kind != K_NODE)
		return -EISDIR;
	if (r.node->type == BW_NODE_DIR)
		return -EISDIR;
	if (r.node->type != BW_NODE_FILE)
		return -EACCES;
	if ((rc = ofile_new(m, r.node, &f)))
		return rc;
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = 1; /* snapshot content never changes */
	return 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	ofile_free((struct ofile *)(uintptr_t)fi->fh);
	return 0;
}

static const struct bw_buf *blob_at(struct mnt *m, struct ofile *f, size_t idx)
{
	for (int i = 0; i < 2; i++)
		if (f->c[i].valid && f->c[i].idx == idx)
			return &f->c[i].data;
	struct blob_cache *c = &f->c[f->next];
	f->next ^= 1;
	c->valid = 0;
	int rc = bw_repo_load_blob(m->r, &f->ids[idx], &c->data);
	if (rc) {
		bw_warn("mount: %s", *bw_err_msg() ? bw_err_msg() : bw_strerror(rc));
		bw_err_clear();
		return NULL;
	}
	uint64_t want = f->ends[idx] - (idx ? f->ends[idx - 1] : 0);
	if (c->data.len != want) {
		bw_warn("mount: a blob's length differs from the index (run `bulwark check`)");
		return NULL;
	}
	c->idx = idx;
	c->valid = 1;
	return &c->data;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
	struct mnt *m = mnt();
	struct ofile *f = (struct ofile *)(uintptr_t)fi->fh;
	size_t done = 0;
	(void)path;
	if (off < 0)
		return -EINVAL;
	uint64_t pos = (uint64_t)off;
	while (done < size && f->n && pos < f->ends[f->n - 1]) {
		size_t lo = 0, hi = f->n - 1;
		while (lo < hi) { /* first blob ending after pos */
			size_t mid = lo + (hi - lo) / 2;
			if (f->ends[mid] > pos)
				hi = mid;
			else
				lo = mid + 1;
		}
		const struct bw_buf *b = blob_at(m, f, lo);
		if (!b)
			return done ? (int)done : -EIO;
		uint64_t start = lo ? f->ends[lo - 1] : 0;
		size_t in = (size_t)(pos - start);
		size_t k = b->len - in;
		if (k > size - done)
			k = size - done;
		memcpy(buf + done, b->data + in, k);
		done += k;
		pos += k;
	}
	return (int)done;
}

/* ---- xattrs, statfs ---- */

static int fs_listxattr(const char *path, char *list, size_t size)
{
	struct res r;
	int rc = resolve(mnt(), path, &r);
	if (rc)
		return rc;
	if (r.kind != K_NODE)
		return 0;
	size_t need = 0;
	for (size_t i = 0; i < r.node->nxattrs; i++)
		need += r.node->xattrs[i].name_len + 1;
	if (!size)
		return (int)need;
	if (size < need)
		return -ERANGE;
	for (size_t i = 0, o = 0; i < r.node->nxattrs; i++) {
		const struct bw_xattr *x = &r.node->xattrs[i];
		memcpy(list + o, x->name, x->name_len);
		list[o + x->name_len] = 0;
		o += x->name_len + 1;
	}
	return (int)need;
}

static int fs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct res r;
	int rc = resolve(mnt(), path, &r);
	if (rc)
		return rc;
	if (r.kind != K_NODE)
		return -ENODATA;
	for (size_t i = 0; i < r.node->nxattrs; i++) {
		const struct bw_xattr *x = &r.node->xattrs[i];
		if (!comp_is(x->name, x->name_len, name))
			continue;
		if (!size)
			return (int)x->value_len;
		if (size < x->value_len)
			return -ERANGE;
		if (x->value_len)
			memcpy(value, x->value, x->value_len);
		return (int)x->value_len;
	}
	return -ENODATA;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof *sv);
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_namemax = 255;
	sv->f_flag = ST_RDONLY;
	return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->kernel_cache = 1;
	cfg->attr_timeout = 60;
	cfg->entry_timeout = 1;
	cfg->negative_timeout = 1;
	return mnt();
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.listxattr = fs_listxattr,
	.getxattr = fs_getxattr,
	.statfs = fs_statfs,
};

static void mnt_release(struct mnt *m)
{
	for (size_t i = 0; i < TREE_CACHE; i++)
		if (m->cache[i].used)
			bw_tree_release(&m->cache[i].t);
	bw_snapshots_free(m->snaps, m->nsnaps);
	free(m->names);
	free(m->shorts);
	if (m->r)
		bw_repo_close(m->r);
}

/* Ctrl-C, SIGTERM, SIGHUP: a thread waits for them (they are blocked
 * everywhere else), tells the loop to exit and interrupts its read of
 * /dev/fuse with SIGUSR1 until it has stopped.  libfuse's own handlers
 * lose a signal that arrives between the loop's exit check and its next
 * read, leaving the mount up until some other request comes. */
struct sigwatch {
	pthread_t t, main;
	sigset_t set;
	struct fuse *f;
	atomic_int done;
};

static void wake_handler(int sig)
{
	(void)sig; /* only interrupts the read */
}

static void *sig_thread(void *arg)
{
	struct sigwatch *w = arg;
	struct timespec ts = {0, 20 * 1000 * 1000};
	int sig;
	if (sigwait(&w->set, &sig) || sig == SIGUSR2) /* SIGUSR2: we are done */
		return NULL;
	fuse_exit(w->f);
	while (!atomic_load(&w->done)) {
		pthread_kill(w->main, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int watch_signals(struct sigwatch *w, struct fuse *f, sigset_t *old)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = wake_handler; /* no SA_RESTART: read fails with EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	w->f = f;
	w->main = pthread_self();
	atomic_init(&w->done, 0);
	sigemptyset(&w->set);
	sigaddset(&w->set, SIGINT);
	sigaddset(&w->set, SIGTERM);
	sigaddset(&w->set, SIGHUP);
	sigaddset(&w->set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &w->set, old);
	if (pthread_create(&w->t, NULL, sig_thread, w)) {
		pthread_sigmask(SIG_SETMASK, old, NULL);
		return bw_errf(BW_ENOMEM, "cannot start the signal thread");
	}
	return 0;
}

static void unwatch_signals(struct sigwatch *w, const sigset_t *old)
{
	atomic_store(&w->done, 1);
	pthread_kill(w->t, SIGUSR2);
	pthread_join(w->t, NULL);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Mount and serve until unmounted (fusermount3 -u) or a signal arrives;
 * both are a normal end. */
static int serve(struct mnt *m, const char *mountpoint, int allow_other)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse *f = NULL;
	struct sigwatch w;
	sigset_t old;
	char opts[128];
	int rc = 0, mounted = 0, watching = 0;
	snprintf(opts, sizeof opts, "ro,default_permissions,fsname=bulwark,subtype=bulwark%s",
	         allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "bulwark") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts)) {
		rc = BW_ENOMEM;
		goto out;
	}
	if (!(f = fuse_new(&args, &fs_ops, sizeof fs_ops, m))) {
		rc = bw_errf(BW_EIO, "cannot set up FUSE (see the message above)");
		goto out;
	}
	if (fuse_mount(f, mountpoint)) {
		rc = bw_errf(BW_EIO, "%s: cannot mount (is /dev/fuse there, and "
		             "fusermount3 installed?)", mountpoint);
		goto out;
	}
	mounted = 1;
	if ((rc = watch_signals(&w, f, &old)))
		goto out;
	watching = 1;
	if (!g.quiet)
		fprintf(stderr, "serving %zu snapshots at %s; unmount with "
		        "`fusermount3 -u %s` or Ctrl-C\n", m->nsnaps, mountpoint, mountpoint);
	int lr = fuse_loop(f); /* single-threaded */
	if (lr < 0)
		rc = bw_errf(BW_EIO, "%s: serving failed: %s", mountpoint, strerror(-lr));
out:
	if (watching)
		unwatch_signals(&w, &old);
	if (mounted)
		fuse_unmount(f);
	if (f)
		fuse_destroy(f);
	fuse_opt_free_args(&args);
	return rc;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		{"allow-other", no_argument, NULL, 1},
		{"foreground", no_argument, NULL, 2},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mnt *m;
	struct stat st;
	int allow_other = 0, c, r;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 1: allow_other = 1; break;
		case 2: break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("mount", "unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("mount", "give exactly one MOUNTPOINT");
	const char *mp = argv[optind];
	if (stat(mp, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "bulwark mount: %s: not an existing directory\n", mp);
		return EXIT_USAGE;
	}
	if (!(m = calloc(1, sizeof *m)))
		return cli_fail("mount", BW_ENOMEM);
	m->uid = getuid();
	m->gid = getgid();
	m->mount_ns = bw_now_ns();
	if ((r = cli_open_repo("mount", &m->r)) || (r = bw_repo_load_index(m->r)) ||
	    (r = snaps_load(m)))
		goto out;
	r = serve(m, mp, allow_other);
out:
	mnt_release(m);
	free(m);
	return r ? cli_fail("mount", r) : EXIT_OK;
}

#else /* !BW_HAVE_FUSE */

int cmd_mount(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		help();
		return EXIT_OK;
	}
	fprintf(stderr, "bulwark mount: built without FUSE support (install libfuse3-dev "
	        "and rebuild)\n");
	return EXIT_ERROR;
}

#endif
