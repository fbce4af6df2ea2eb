/* Backup: walk, chunk, hash, deduplicate, compress, encrypt, pack.
 *
 * One walker thread reads directories (sorted, lstat'ed) and compares each
 * entry with the parent snapshot's tree: a file whose inode, size, mtime
 * and ctime are unchanged, and whose blobs are all still indexed, is not
 * read again.  Other files go to a pool of workers (one per CPU) that
 * chunk, MAC, claim, compress, seal and append to their own pack.  A
 * directory's tree is encoded when its last child is done.
 *
 * Write order (crash safety): packs are complete and durable before the
 * index file naming them is written, and every index file is durable before
 * the snapshot that needs it.  A kill at any instant leaves at worst
 * unreferenced packs, which `prune` removes. */
#include "repo_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "backup_prep.h"
#include "chunker.h"
#include "pack.h"

#define INDEX_FLUSH_PACKS 256 /* write an index file every so many packs */

struct bnode;
struct dirjob;

struct ctx {
	struct bw_repo *r;
	const struct bw_backup_opts *o;
	struct bw_chunker chunker;
	struct bw_pool *pool;
	int level;
	int group; /* small data blobs go into groups (format 2) */

	pthread_mutex_t mu; /* guards everything below */
	int fatal;          /* first fatal error: stops the backup */
	char fatal_msg[512];
	struct bw_snapshot_summary sum;
	struct bw_progress prog;
	struct worker *workers;
	struct bw_index_pack *done_packs; /* finished, not yet in an index file */
	size_t ndone, capdone;
	struct bw_pack_writer *tree_pack;
	struct bw_blob_ctx *tree_ctx;
	struct bw_buf tree_sealed;
	struct bw_id *index_files;
	size_t nindex_files;

	/* uid/gid name caches (walker thread only) */
	struct idname { uint32_t id; char name[64]; } users[64], groups[64];
	int nusers, ngroups;
	struct bw_blob_ctx *walk_ctx;
	dev_t root_dev;
};

struct worker {
	struct ctx *c;
	struct bw_blob_ctx *bctx;
	struct bw_pack_writer *pack;
	struct bw_buf in, sealed;
	struct worker *next;
};

/* A node under construction and the memory it owns. */
struct bnode {
	struct bw_node n;
	char *name, *target, *user, *group;
	struct bw_xattr *xa;
	uint8_t *xbuf;
	struct bw_id *content;
	size_t ccap;
	int skip;      /* vanished or unreadable: left out of the tree */
	int had_prev;  /* the parent snapshot had this name */
	struct dirjob *sub; /* directory being built for this node */
};

struct dirjob {
	struct ctx *c;
	struct dirjob *up;
	size_t up_slot;
	struct bnode *nodes;
	size_t n;
	int pending;   /* children not done + 1 while the walker lists it */
	int had_prev;
	struct bw_id prev_id;
	struct bw_tree prev; /* parent snapshot's tree, nodes may point into it */
	struct filejob *batch; /* files not yet handed to the workers */
};

static _Thread_local struct worker *tls_worker;
static _Thread_local struct ctx *tls_owner;

static void set_fatal(struct ctx *c, int r, const char *what)
{
	pthread_mutex_lock(&c->mu);
	if (!c->fatal) {
		c->fatal = r;
		snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s%s%s", what,
		         *bw_err_msg() ? ": " : "", bw_err_msg());
	}
	pthread_mutex_unlock(&c->mu);
}

static int is_fatal(struct ctx *c)
{
	pthread_mutex_lock(&c->mu);
	int f = c->fatal;
	pthread_mutex_unlock(&c->mu);
	return f;
}

static void report(struct ctx *c, const char *path, const char *fmt, ...)
	BW_PRINTF(3, 4);
static void report(struct ctx *c, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->mu);
	c->sum.errors++;
	c->prog.errors++;
	if (c->o->on_error)
		c->o->on_error(path, msg, c->o->error_arg);
	else
		bw_warn("%s: %s", path, msg);
	pthread_mutex_unlock(&c->mu);
}

static void progress(struct ctx *c, const char *cur, int final)
{
	if (!c->o->progress)
		return;
	/* called with c->mu held */
	c->prog.current = cur;
	c->prog.final = final;
	c->o->progress(&c->prog, c->o->progress_arg);
}

/* ---- packs ---- */

/* Hand a finished pack's blobs to the index and the pending index list.
 * Called with c->mu held. */
static int pack_done(struct ctx *c, const struct bw_id *pid,
                     struct bw_pack_blob *blobs, size_t n)
{
	uint32_t no;
	int r = bw_index_add_pack(c->r->index, pid, &no);
	if (r) {
		free(blobs);
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (!bw_pack_same_bytes(blobs, i))
			c->sum.data_added_packed += blobs[i].length;
		struct bw_index_entry e;
		memset(&e, 0, sizeof e);
		e.id = blobs[i].id;
		e.pack = no;
		e.offset = blobs[i].offset;
		e.length = blobs[i].length;
		e.raw_length = blobs[i].raw_length;
		e.type = blobs[i].type;
		e.grouped = blobs[i].grouped;
		if ((r = bw_index_insert(c->r->index, &e)) < 0) {
			free(blobs);
			return r;
		}
	}
	if (c->ndone == c->capdone) {
		size_t nc = c->capdone ? c->capdone * 2 : 64;
		void *v = realloc(c->done_packs, nc * sizeof *c->done_packs);
		if (!v) {
			free(blobs);
			return BW_ENOMEM;
		}
		c->done_packs = v;
		c->capdone = nc;
	}
	c->done_packs[c->ndone].id = *pid;
	c->done_packs[c->ndone].blobs = blobs;
	c->done_packs[c->ndone].n = n;
	c->ndone++;
	return 0;
}

/* Write an index file for the finished packs.  Called with c->mu held. */
static int flush_index(struct ctx *c)
{
	if (!c->ndone)
		return 0;
	struct bw_id id;
	/* the packs must be durable before an index names them */
	int r = bw_be_sync(c->r->be);
	if (r)
		return r;
	r = bw_repo_write_index(c->r, NULL, 0, c->done_packs, c->ndone, &id);
	if (r)
		return r;
	for (size_t i = 0; i < c->ndone; i++)
		free(c->done_packs[i].blobs);
	c->ndone = 0;
	void *v = realloc(c->index_files, (c->nindex_files + 1) * sizeof *c->index_files);
	if (!v)
		return BW_ENOMEM;
	c->index_files = v;
	c->index_files[c->nindex_files++] = id;
	return 0;
}

static int finish_pack(struct ctx *c, struct bw_pack_writer **pw)
{
	struct bw_id pid;
	struct bw_pack_blob *blobs = NULL;
	size_t n = 0;
	struct bw_pack_writer *w = *pw;
	*pw = NULL;
	if (!w)
		return 0;
	if (!bw_pack_writer_count(w)) {
		bw_pack_writer_abort(w);
		return 0;
	}
	int r = bw_pack_writer_finish(w, c->r->keys, &pid, &blobs, &n);
	if (r)
		return r;
	pthread_mutex_lock(&c->mu);
	r = pack_done(c, &pid, blobs, n);
	if (!r && c->ndone >= INDEX_FLUSH_PACKS)
		r = flush_index(c);
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Store one blob (already claimed) through pack writer *pw. */
static int store_blob(struct ctx *c, struct bw_blob_ctx *bc,
                      struct bw_pack_writer **pw, struct bw_buf *sealed,
                      uint8_t type, const struct bw_id *id,
                      const uint8_t *p, size_t n)
{
	int r;
	if (c->o->dry_run) {
		pthread_mutex_lock(&c->mu);
		c->sum.data_added += n;
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	int grouped = c->group && type == BW_BLOB_DATA && n < BW_GROUP_BLOB_MAX;
	if (!*pw && (r = bw_pack_writer_new(c->r->be, c->r->hash, pw)))
		return r;
	if (grouped) {
		if ((r = bw_pack_writer_add_grouped(*pw, bc, c->r->keys, type, id, p, n)))
			return r;
	} else {
		if ((r = bw_blob_encode(bc, c->r->keys, id, p, n, sealed)))
			return r;
		if ((r = bw_pack_writer_add(*pw, type, id, sealed->data, sealed->len,
		                            (uint32_t)n)))
			return r;
	}
	pthread_mutex_lock(&c->mu);
	c->sum.data_added += n; /* stored bytes are counted in pack_done */
	if (type == BW_BLOB_DATA)
		c->sum.data_blobs++;
	else
		c->sum.tree_blobs++;
	pthread_mutex_unlock(&c->mu);
	if (bw_pack_writer_size(*pw) >= BW_PACK_TARGET)
		r = finish_pack(c, pw);
	return r;
}

/* ---- nodes ---- */

static void bnode_release(struct bnode *b)
{
	free(b->name);
	free(b->target);
	free(b->user);
	free(b->group);
	free(b->xa);
	free(b->xbuf);
	free(b->content);
}

static const char *id_name(struct ctx *c, int user, uint32_t id)
{
	struct idname *tab = user ? c->users : c->groups;
	int *n = user ? &c->nusers : &c->ngroups;
	for (int i = 0; i < *n; i++)
		if (tab[i].id == id)
			return tab[i].name;
	char name[64] = "";
	if (user) {
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (!getpwuid_r(id, &pw, buf, sizeof buf, &res) && res)
			snprintf(name, sizeof name, "%s", pw.pw_name);
	} else {
		struct group gr, *res = NULL;
		char buf[4096];
		if (!getgrgid_r(id, &gr, buf, sizeof buf, &res) && res)
			snprintf(name, sizeof name, "%s", gr.gr_name);
	}
	int slot = *n < 64 ? (*n)++ : (int)(id % 64);
	tab[slot].id = id;
	snprintf(tab[slot].name, sizeof tab[slot].name, "%s", name);
	return tab[slot].name;
}

static uint8_t node_type(mode_t m)
{
	if (S_ISREG(m)) return BW_NODE_FILE;
	if (S_ISDIR(m)) return BW_NODE_DIR;
	if (S_ISLNK(m)) return BW_NODE_SYMLINK;
	if (S_ISCHR(m)) return BW_NODE_CHR;
	if (S_ISBLK(m)) return BW_NODE_BLK;
	if (S_ISFIFO(m)) return BW_NODE_FIFO;
	if (S_ISSOCK(m)) return BW_NODE_SOCK;
	return 0;
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Extended attributes (POSIX ACLs are the system.posix_acl_* ones). */
static int read_xattrs(struct ctx *c, struct bnode *b, const char *path)
{
	char names[65536];
	ssize_t ln = llistxattr(path, names, sizeof names);
	if (ln <= 0) {
		if (ln < 0 && errno != ENOTSUP && errno != ENOENT)
			report(c, path, "cannot list extended attributes: %s", strerror(errno));
		return 0;
	}
	size_t cnt = 0;
	for (ssize_t i = 0; i < ln; i += (ssize_t)strlen(names + i) + 1)
		cnt++;
	struct bw_buf vals;
	bw_buf_init(&vals, (size_t)64 << 20);
	size_t *voff = calloc(cnt, sizeof *voff), *vlen = calloc(cnt, sizeof *vlen);
	size_t *noff = calloc(cnt, sizeof *noff), k = 0;
	int r = 0;
	if (!voff || !vlen || !noff) {
		r = BW_ENOMEM;
		goto out;
	}
	for (ssize_t i = 0; i < ln; i += (ssize_t)strlen(names + i) + 1) {
		const char *nm = names + i;
		ssize_t vl = lgetxattr(path, nm, NULL, 0);
		if (vl < 0 || (size_t)vl > BW_XATTR_MAX_VALUE)
			continue;
		noff[k] = vals.len;
		if ((r = bw_buf_append(&vals, nm, strlen(nm))))
			goto out;
		voff[k] = vals.len;
		if ((r = bw_buf_reserve(&vals, (size_t)vl)))
			goto out;
		vl = lgetxattr(path, nm, vals.data + vals.len, (size_t)vl);
		if (vl < 0) {
			vals.len = noff[k];
			continue;
		}
		vals.len += (size_t)vl;
		vlen[k] = (size_t)vl;
		k++;
	}
	if (!k)
		goto out;
	b->xa = calloc(k, sizeof *b->xa);
	if (!b->xa) {
		r = BW_ENOMEM;
		goto out;
	}
	b->xbuf = vals.data;
	vals.data = NULL;
	for (size_t i = 0; i < k; i++) {
		b->xa[i].name = (const char *)b->xbuf + noff[i];
		b->xa[i].name_len = voff[i] - noff[i];
		b->xa[i].value = b->xbuf + voff[i];
		b->xa[i].value_len = vlen[i];
	}
	b->n.xattrs = b->xa;
	b->n.nxattrs = k;
out:
	free(voff);
	free(vlen);
	free(noff);
	bw_buf_release(&vals);
	return r;
}

/* Fill metadata from lstat; xattrs and the link target are read here. */
static int fill_node(struct ctx *c, struct bnode *b, const char *path,
                     const char *name, size_t nlen, const struct stat *st)
{
	struct bw_node *n = &b->n;
	if (!(b->name = malloc(nlen + 1)))
		return BW_ENOMEM;
	memcpy(b->name, name, nlen);
	b->name[nlen] = 0;
	n->name = b->name;
	n->name_len = nlen;
	n->type = node_type(st->st_mode);
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	const char *u = id_name(c, 1, st->st_uid), *gr = id_name(c, 0, st->st_gid);
	b->user = strdup(u);
	b->group = strdup(gr);
	if (!b->user || !b->group)
		return BW_ENOMEM;
	n->user = b->user;
	n->user_len = strlen(u);
	n->group = b->group;
	n->group_len = strlen(gr);
	n->size = n->type == BW_NODE_FILE ? (uint64_t)st->st_size : 0;
	n->mtime_ns = ts_ns(st->st_mtim);
	/* listing a directory moves its atime: keeping it would make every
	 * backup store new trees for unchanged directories */
	n->atime_ns = S_ISDIR(st->st_mode) ? 0 : ts_ns(st->st_atim);
	n->ctime_ns = ts_ns(st->st_ctim);
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->nlink = st->st_nlink;
	n->rdev = (n->type == BW_NODE_CHR || n->type == BW_NODE_BLK) ? st->st_rdev : 0;
	if (n->type == BW_NODE_SYMLINK) {
		size_t cap = (size_t)st->st_size + 1 < 4096 ? 4096 : (size_t)st->st_size + 1;
		if (!(b->target = malloc(cap)))
			return BW_ENOMEM;
		ssize_t l = readlink(path, b->target, cap);
		if (l < 0) {
			report(c, path, "cannot read symlink: %s", strerror(errno));
			b->skip = 1;
			return 0;
		}
		n->target = b->target;
		n->target_len = (size_t)l;
	}
	return read_xattrs(c, b, path);
}

static int content_add(struct bnode *b, const struct bw_id *id)
{
	if (b->n.ncontent == b->ccap) {
		size_t nc = b->ccap ? b->ccap * 2 : 4;
		void *v = realloc(b->content, nc * sizeof *b->content);
		if (!v)
			return BW_ENOMEM;
		b->content = v;
		b->ccap = nc;
	}
	b->content[b->n.ncontent++] = *id;
	b->n.content = b->content;
	return 0;
}

/* ---- file contents (workers) ---- */

static struct worker *get_worker(struct ctx *c)
{
	if (tls_owner == c && tls_worker)
		return tls_worker;
	struct worker *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->c = c;
	if (!(w->bctx = bw_blob_ctx_new(c->level))) {
		free(w);
		return NULL;
	}
	/* exactly one read-ahead window: the buffer never doubles */
	bw_buf_init(&w->in, (size_t)c->chunker.max + (1u << 20));
	bw_buf_init(&w->sealed, (size_t)c->chunker.max * 2 + (1u << 20));
	pthread_mutex_lock(&c->mu);
	w->next = c->workers;
	c->workers = w;
	pthread_mutex_unlock(&c->mu);
	tls_worker = w;
	tls_owner = c;
	return w;
}

/* Read fd to its end, chunk and store; appends blob IDs to b. */
static int chunk_stream(struct ctx *c, struct worker *w, int fd,
                        struct bnode *b, const char *path, uint64_t *total)
{
	struct bw_buf *in = &w->in;
	size_t want = (size_t)c->chunker.max + (1u << 20);
	size_t start = 0;
	int eof = 0, r = 0;
	*total = 0;
	bw_buf_reset(in);
	if ((r = bw_buf_reserve(in, want)))
		return r;
	for (;;) {
		while (!eof && in->len - start < c->chunker.max) {
			if (in->cap - 1 - in->len < (1u << 20) && start) {
				memmove(in->data, in->data + start, in->len - start);
				in->len -= start;
				start = 0;
			}
			size_t room = in->cap - 1 - in->len;
			ssize_t k = read(fd, in->data + in->len, room);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				report(c, path, "read error: %s", strerror(errno));
				return BW_EIO;
			}
			if (k == 0)
				eof = 1;
			in->len += (size_t)k;
			*total += (uint64_t)k;
		}
		size_t avail = in->len - start;
		if (!avail)
			break;
		size_t cut = bw_chunker_next(&c->chunker, in->data + start, avail, eof);
		if (!cut)
			cut = avail; /* cannot happen: eof or avail >= max */
		struct bw_id id;
		const uint8_t *p = in->data + start;
		bw_repo_blob_id(c->r, p, cut, &id);
		if (bw_index_claim(c->r->index, &id, BW_BLOB_DATA) == 1) {
			if ((r = store_blob(c, w->bctx, &w->pack, &w->sealed, BW_BLOB_DATA,
			                    &id, p, cut))) {
				set_fatal(c, r, "storing data");
				return r;
			}
		}
		if ((r = content_add(b, &id)))
			return r;
		start += cut;
		pthread_mutex_lock(&c->mu);
		c->prog.bytes_done += cut;
		pthread_mutex_unlock(&c->mu);
		if (is_fatal(c))
			return c->fatal;
	}
	return 0;
}

static void dir_child_done(struct dirjob *d);

/* Small files travel in batches: one queue hand-off (and one wake-up)
 * per batch instead of per file. */
#define BATCH_FILES 32
#define BATCH_BYTES ((uint64_t)4 << 20)

struct filejob {
	struct dirjob *d;
	size_t n;
	uint64_t bytes;
	size_t slot[BATCH_FILES];
	char *path[BATCH_FILES];
};

static void file_one(struct ctx *c, struct worker *w, struct bnode *b,
                     const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			report(c, path, "vanished before it could be read");
		else
			report(c, path, "cannot open: %s", strerror(errno));
		b->skip = 1;
		return;
	}
	struct stat st0, st1;
	if (fstat(fd, &st0) || !S_ISREG(st0.st_mode) || st0.st_ino != (ino_t)b->n.ino) {
		report(c, path, "was replaced before it could be read");
		close(fd);
		b->skip = 1;
		return;
	}
	if (st0.st_size > (off_t)(1u << 20))
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	uint64_t total = 0;
	int r = chunk_stream(c, w, fd, b, path, &total);
	if (r) {
		close(fd);
		b->skip = 1;
		return;
	}
	if (!fstat(fd, &st1) &&
	    (ts_ns(st1.st_mtim) != b->n.mtime_ns || total != (uint64_t)st0.st_size ||
	     st1.st_size != st0.st_size)) {
		report(c, path, "changed while being read (saved as read, %llu bytes)",
		       (unsigned long long)total);
		/* keep what was read, with the metadata that matches it */
		b->n.mtime_ns = ts_ns(st1.st_mtim);
		b->n.ctime_ns = ts_ns(st1.st_ctim);
	}
	b->n.size = total;
	close(fd);
	pthread_mutex_lock(&c->mu);
	if (b->had_prev)
		c->sum.files_changed++;
	else
		c->sum.files_new++;
	pthread_mutex_unlock(&c->mu);
}

static void file_task(void *arg)
{
	struct filejob *j = arg;
	struct dirjob *d = j->d;
	struct ctx *c = d->c;
	struct worker *w = get_worker(c);
	if (!w)
		set_fatal(c, BW_ENOMEM, "out of memory");
	for (size_t k = 0; k < j->n; k++) {
		struct bnode *b = &d->nodes[j->slot[k]];
		if (w && !is_fatal(c))
			file_one(c, w, b, j->path[k]);
		pthread_mutex_lock(&c->mu);
		c->prog.files_done++;
		progress(c, j->path[k], 0);
		pthread_mutex_unlock(&c->mu);
		free(j->path[k]);
		/* the last call may free d: the batch holds one count per file */
		dir_child_done(d);
	}
	free(j);
}

static int batch_flush(struct ctx *c, struct filejob **jp)
{
	struct filejob *j = *jp;
	*jp = NULL;
	if (!j)
		return 0;
	return bw_pool_submit(c->pool, file_task, j);
}

/* ---- directories ---- */

static void dirjob_free(struct dirjob *d)
{
	if (d->batch) { /* only after a failure: never handed over */
		for (size_t i = 0; i < d->batch->n; i++)
			free(d->batch->path[i]);
		free(d->batch);
	}
	for (size_t i = 0; i < d->n; i++)
		bnode_release(&d->nodes[i]);
	free(d->nodes);
	bw_tree_release(&d->prev);
	free(d);
}

/* Encode and store the tree of d; hand its ID to the parent node. */
static int dir_finish(struct dirjob *d, struct bw_id *out)
{
	struct ctx *c = d->c;
	struct bw_node *nodes = malloc((d->n ? d->n : 1) * sizeof *nodes);
	size_t k = 0;
	struct bw_buf enc;
	int r;
	if (!nodes)
		return BW_ENOMEM;
	for (size_t i = 0; i < d->n; i++)
		if (!d->nodes[i].skip)
			nodes[k++] = d->nodes[i].n;
	bw_buf_init(&enc, BW_TREE_MAX_BYTES);
	r = bw_tree_encode(nodes, k, &enc);
	free(nodes);
	if (r)
		goto out;
	bw_repo_blob_id(c->r, enc.data, enc.len, out);
	pthread_mutex_lock(&c->mu);
	if (d->had_prev && !memcmp(d->prev_id.b, out->b, BW_ID_LEN))
		c->sum.dirs_unmodified++;
	else if (d->had_prev)
		c->sum.dirs_changed++;
	else
		c->sum.dirs_new++;
	if (bw_index_claim(c->r->index, out, BW_BLOB_TREE) == 1) {
		if (!c->tree_ctx && !(c->tree_ctx = bw_blob_ctx_new(c->level)))
			r = BW_ENOMEM;
		if (!r) {
			/* store_blob takes c->mu itself for the counters */
			pthread_mutex_unlock(&c->mu);
			static pthread_mutex_t tree_mu = PTHREAD_MUTEX_INITIALIZER;
			pthread_mutex_lock(&tree_mu);
			r = store_blob(c, c->tree_ctx, &c->tree_pack, &c->tree_sealed,
			               BW_BLOB_TREE, out, enc.data, enc.len);
			pthread_mutex_unlock(&tree_mu);
			pthread_mutex_lock(&c->mu);
		}
	}
	pthread_mutex_unlock(&c->mu);
out:
	bw_buf_release(&enc);
	return r;
}

static void dir_child_done(struct dirjob *d)
{
	for (;;) {
		struct ctx *c = d->c;
		pthread_mutex_lock(&c->mu);
		int left = --d->pending;
		pthread_mutex_unlock(&c->mu);
		if (left)
			return;
		struct bw_id id;
		int r = is_fatal(c) ? c->fatal : dir_finish(d, &id);
		if (r)
			set_fatal(c, r, "storing a tree");
		struct dirjob *up = d->up;
		if (up) {
			struct bnode *b = &up->nodes[d->up_slot];
			if (!r)
				b->n.subtree = id;
			b->sub = NULL;
			dirjob_free(d);
			d = up;
			continue;
		}
		/* the root: the caller reads its ID from up_slot's place */
		if (!r)
			memcpy(&d->prev_id, &id, sizeof id); /* reused as the result */
		d->had_prev = r ? -1 : 2;
		return;
	}
}

static int excluded(struct ctx *c, const char *path, const char *name)
{
	for (size_t i = 0; i < c->o->nexcludes; i++) {
		const char *pat = c->o->excludes[i];
		if (strchr(pat, '/')) {
			if (!fnmatch(pat, path, 0))
				return 1;
			/* a directory pattern excludes what lies below it */
			size_t pl = strlen(pat);
			if (pl > 1 && pat[pl - 1] == '/' && !strncmp(path, pat, pl - 1) &&
			    path[pl - 1] == 0)
				return 1;
		} else if (!fnmatch(pat, name, 0)) {
			return 1;
		}
	}
	return 0;
}

struct ent {
	char *name;
	size_t len;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return bw_node_cmp_name(x->name, x->len, y->name, y->len);
}

static int same_file(const struct bw_node *p, const struct bw_node *n)
{
	return p->type == BW_NODE_FILE && p->size == n->size &&
	       p->mtime_ns == n->mtime_ns && p->ctime_ns == n->ctime_ns &&
	       p->ino == n->ino;
}

static int blobs_present(struct ctx *c, const struct bw_node *p)
{
	struct bw_index_entry e;
	for (size_t i = 0; i < p->ncontent; i++)
		if (bw_index_lookup(c->r->index, &p->content[i], &e))
			return 0;
	return 1;
}

static int walk_dir(struct ctx *c, struct dirjob *d, const char *path);

/* A directory child of d in slot i, held once by the walker, with the
 * parent snapshot's tree for it (if any) loaded for comparison. */
static struct dirjob *dirjob_new(struct ctx *c, struct dirjob *d, size_t i,
                                 const struct bw_node *prev)
{
	struct dirjob *sub = calloc(1, sizeof *sub);
	if (!sub)
		return NULL;
	sub->c = c;
	sub->up = d;
	sub->up_slot = i;
	sub->pending = 1;
	if (prev && prev->type == BW_NODE_DIR) {
		sub->had_prev = 1;
		sub->prev_id = prev->subtree;
		if (bw_repo_load_tree_ctx(c->r, c->walk_ctx, &prev->subtree, &sub->prev)) {
			bw_err_clear(); /* compared as new: everything is read */
			memset(&sub->prev, 0, sizeof sub->prev);
		}
	}
	return sub;
}

/* Set up child slot i of d for the entry at path with stat st. */
static int add_entry(struct ctx *c, struct dirjob *d, size_t i,
                     const char *path, const char *name, size_t nlen,
                     const struct stat *st)
{
	struct bnode *b = &d->nodes[i];
	const struct bw_node *prev = d->prev.n ? bw_tree_find(&d->prev, name, nlen) : NULL;
	int r;
	b->had_prev = prev != NULL;
	/* unchanged file: reuse the parent's node whole (ctime covers xattrs) */
	if (S_ISREG(st->st_mode) && prev && !c->o->force) {
		struct bw_node probe;
		memset(&probe, 0, sizeof probe);
		probe.size = (uint64_t)st->st_size;
		probe.mtime_ns = ts_ns(st->st_mtim);
		probe.ctime_ns = ts_ns(st->st_ctim);
		probe.ino = st->st_ino;
		if (same_file(prev, &probe) && prev->uid == st->st_uid &&
		    prev->gid == st->st_gid && prev->mode == (st->st_mode & 07777) &&
		    blobs_present(c, prev)) {
			b->n = *prev;
			b->n.atime_ns = ts_ns(st->st_atim);
			b->n.nlink = st->st_nlink;
			b->n.dev = st->st_dev;
			pthread_mutex_lock(&c->mu);
			c->sum.files_unmodified++;
			c->sum.total_files++;
			c->sum.total_bytes += b->n.size;
			c->prog.files_done++;
			c->prog.bytes_done += b->n.size;
			c->prog.files_total = c->sum.total_files;
			c->prog.bytes_total = c->sum.total_bytes;
			pthread_mutex_unlock(&c->mu);
			return 0;
		}
	}
	if ((r = fill_node(c, b, path, name, nlen, st)))
		return r;
	if (b->skip)
		return 0;
	if (S_ISREG(st->st_mode)) {
		pthread_mutex_lock(&c->mu);
		c->sum.total_files++;
		c->sum.total_bytes += (uint64_t)st->st_size;
		c->prog.files_total = c->sum.total_files;
		c->prog.bytes_total = c->sum.total_bytes;
		d->pending++;
		pthread_mutex_unlock(&c->mu);
		if (!d->batch && !(d->batch = calloc(1, sizeof *d->batch)))
			return BW_ENOMEM;
		struct filejob *j = d->batch;
		j->d = d;
		if (!(j->path[j->n] = strdup(path)))
			return BW_ENOMEM;
		j->slot[j->n++] = i;
		j->bytes += (uint64_t)st->st_size;
		if (j->n == BATCH_FILES || j->bytes >= BATCH_BYTES)
			return batch_flush(c, &d->batch);
		return 0;
	}
	if (S_ISDIR(st->st_mode)) {
		struct dirjob *sub = dirjob_new(c, d, i, prev);
		if (!sub)
			return BW_ENOMEM;
		b->sub = sub;
		pthread_mutex_lock(&c->mu);
		d->pending++;
		pthread_mutex_unlock(&c->mu);
		/* with --one-file-system a mount point is kept as an empty directory */
		if (!c->o->one_file_system || st->st_dev == c->root_dev)
			r = walk_dir(c, sub, path);
		dir_child_done(sub); /* drop the walker's hold */
		return r;
	}
	return 0;
}

/* List, sort and lstat a directory; queue its children. */
static int walk_dir(struct ctx *c, struct dirjob *d, const char *path)
{
	DIR *dir = opendir(path);
	struct ent *ents = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	struct bw_buf child;
	bw_buf_init(&child, 1 << 16);
	if (!dir) {
		report(c, path, "cannot read directory: %s", strerror(errno));
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			void *v = realloc(ents, nc * sizeof *ents);
			if (!v) {
				r = BW_ENOMEM;
				goto out;
			}
			ents = v;
			cap = nc;
		}
		ents[n].len = strlen(de->d_name);
		if (!(ents[n].name = strdup(de->d_name))) {
			r = BW_ENOMEM;
			goto out;
		}
		n++;
	}
	if (n)
		qsort(ents, n, sizeof *ents, ent_cmp);
	if (n && !(d->nodes = calloc(n, sizeof *d->nodes))) {
		r = BW_ENOMEM;
		goto out;
	}
	d->n = n;
	for (size_t i = 0; i < n && !r; i++) {
		struct stat st;
		if ((r = bw_path_join(&child, path, ents[i].name)))
			break;
		const char *cp = bw_buf_cstr(&child);
		if (excluded(c, cp, ents[i].name)) {
			d->nodes[i].skip = 1;
			continue;
		}
		if (fstatat(dirfd(dir), ents[i].name, &st, AT_SYMLINK_NOFOLLOW)) {
			if (errno != ENOENT)
				report(c, cp, "cannot stat: %s", strerror(errno));
			d->nodes[i].skip = 1;
			continue;
		}
		if (!node_type(st.st_mode)) {
			d->nodes[i].skip = 1;
			continue;
		}
		r = add_entry(c, d, i, cp, ents[i].name, ents[i].len, &st);
		if (!r && is_fatal(c))
			r = c->fatal;
	}
out:
	if (!r)
		r = batch_flush(c, &d->batch);
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	closedir(dir);
	bw_buf_release(&child);
	return r;
}

/* ---- the top: the paths given become a tree of their own ---- */

static int walk_virtual(struct ctx *c, struct dirjob *d, struct vdir *v)
{
	int r = 0;
	if (v->nkids)
		qsort(v->kids, v->nkids, sizeof *v->kids, bw_vdir_cmp);
	if (v->nkids && !(d->nodes = calloc(v->nkids, sizeof *d->nodes)))
		return BW_ENOMEM;
	d->n = v->nkids;
	for (size_t i = 0; i < v->nkids && !r; i++) {
		struct vdir *k = &v->kids[i];
		struct stat st;
		if (lstat(k->path, &st)) {
			report(c, k->path, "cannot stat: %s", strerror(errno));
			d->nodes[i].skip = 1;
			continue;
		}
		if (k->leaf) {
			if (S_ISDIR(st.st_mode))
				c->root_dev = st.st_dev;
			r = add_entry(c, d, i, k->path, k->name, strlen(k->name), &st);
			continue;
		}
		/* an intermediate directory: its metadata, our children */
		struct bnode *b = &d->nodes[i];
		if ((r = fill_node(c, b, k->path, k->name, strlen(k->name), &st)))
			break;
		const struct bw_node *prev = d->prev.n ? bw_tree_find(&d->prev, k->name, strlen(k->name)) : NULL;
		struct dirjob *sub = dirjob_new(c, d, i, prev);
		if (!sub)
			return BW_ENOMEM;
		pthread_mutex_lock(&c->mu);
		d->pending++;
		pthread_mutex_unlock(&c->mu);
		r = walk_virtual(c, sub, k);
		dir_child_done(sub);
	}
	if (!r)
		r = batch_flush(c, &d->batch);
	return r;
}

/* stdin: one file at the root */
static int backup_stdin(struct ctx *c, struct dirjob *root)
{
	const char *name = c->o->stdin_name && *c->o->stdin_name ? c->o->stdin_name : "stdin";
	if (strchr(name, '/'))
		return bw_errf(BW_EINVAL, "--stdin-filename must not contain '/'");
	if (!(root->nodes = calloc(1, sizeof *root->nodes)))
		return BW_ENOMEM;
	root->n = 1;
	struct bnode *b = &root->nodes[0];
	struct stat st;
	memset(&st, 0, sizeof st);
	st.st_mode = S_IFREG | 0644;
	st.st_uid = getuid();
	st.st_gid = getgid();
	clock_gettime(CLOCK_REALTIME, &st.st_mtim);
	st.st_ctim = st.st_atim = st.st_mtim;
	st.st_nlink = 1;
	int r = fill_node(c, b, "/dev/null", name, strlen(name), &st);
	if (r)
		return r;
	b->n.nxattrs = 0;
	struct worker *w = get_worker(c);
	if (!w)
		return BW_ENOMEM;
	uint64_t total;
	if ((r = chunk_stream(c, w, 0, b, "stdin", &total)))
		return r;
	b->n.size = total;
	c->sum.files_new++;
	c->sum.total_files++;
	c->sum.total_bytes += total;
	return 0;
}

static int find_parent(struct ctx *c, char **abs, size_t n, const char *host,
                       struct bw_snapshot *parent)
{
	struct bw_snapshot *v;
	size_t cnt;
	int r = bw_repo_snapshots(c->r, &v, &cnt);
	if (r)
		return r;
	int found = 0;
	for (size_t i = cnt; i-- > 0 && !found;) {
		if (c->o->parent) {
			if (!memcmp(v[i].id.b, c->o->parent->b, BW_ID_LEN))
				found = 1;
		} else if (!strcmp(v[i].hostname, host) && v[i].npaths == n) {
			int same = 1;
			for (size_t k = 0; k < n && same; k++)
				same = !strcmp(v[i].paths[k], abs[k]);
			found = same;
		}
		if (found) {
			*parent = v[i];
			memset(&v[i], 0, sizeof v[i]);
		}
	}
	bw_snapshots_free(v, cnt);
	return found ? 0 : BW_ENOENT;
}

int bw_backup(struct bw_repo *r, const struct bw_backup_opts *o,
              struct bw_snapshot *out)
{
	struct ctx c;
	struct dirjob *root = NULL;
	struct vdir vroot;
	struct bw_snapshot parent;
	struct bw_session *sess = NULL;
	struct bw_refresher refresh;
	char host[256];
	char **abs = NULL;
	size_t nabs = 0;
	int rc = 0;

	memset(&c, 0, sizeof c);
	memset(&refresh, 0, sizeof refresh);
	memset(&vroot, 0, sizeof vroot);
	memset(&parent, 0, sizeof parent);
	memset(out, 0, sizeof *out);
	pthread_mutex_init(&c.mu, NULL);
	c.r = r;
	c.o = o;
	c.level = r->compression;
	c.group = r->version >= 2;
	bw_buf_init(&c.tree_sealed, BW_TREE_MAX_BYTES + 1024);
	bw_chunker_init(&c.chunker, r->keys->chunker, &r->chunker);
	if (o->hostname)
		snprintf(host, sizeof host, "%s", o->hostname);
	else if (gethostname(host, sizeof host))
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = 0;

	if (!o->stdin_mode && !o->npaths)
		return bw_errf(BW_EINVAL, "nothing to back up: give at least one path");
	if ((rc = bw_backup_check_utf8(o)))
		return rc;
	if (o->stdin_mode) {
		const char *nm = o->stdin_name && *o->stdin_name ? o->stdin_name : "stdin";
		nabs = 1;
		if (!(abs = calloc(1, sizeof *abs)) || !(abs[0] = malloc(strlen(nm) + 2))) {
			rc = BW_ENOMEM;
			goto out;
		}
		abs[0][0] = '/';
		memcpy(abs[0] + 1, nm, strlen(nm) + 1);
	} else {
		if (!(abs = calloc(o->npaths, sizeof *abs))) {
			rc = BW_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < o->npaths; i++) {
			struct stat st;
			if ((rc = bw_path_absolute(o->paths[i], &abs[nabs])))
				goto out;
			if (lstat(abs[nabs], &st)) {
				rc = bw_errf(bw_from_errno(errno), "%s: %s", o->paths[i], strerror(errno));
				goto out;
			}
			nabs++;
		}
		qsort(abs, nabs, sizeof *abs, bw_str_cmp);
	}

	if (!o->dry_run && (rc = bw_session_begin(r, "backup", &sess)))
		goto out;
	bw_refresher_start(&refresh, sess);
	if ((rc = bw_repo_load_index(r)))
		goto out;
	{
		/* never deduplicate against packs that a prune plans to delete */
		struct bw_id *planned = NULL;
		size_t np = 0;
		if ((rc = bw_plans_packs(r, &planned, &np)))
			goto out;
		for (size_t i = 0; i < np; i++) {
			uint32_t no;
			if (!bw_index_add_pack(r->index, &planned[i], &no))
				bw_index_forget_pack(r->index, no);
		}
		free(planned);
	}
	if (!(c.walk_ctx = bw_blob_ctx_new(c.level))) {
		rc = BW_ENOMEM;
		goto out;
	}

	int have_parent = 0;
	if (!o->force) {
		rc = find_parent(&c, abs, nabs, host, &parent);
		if (rc && rc != BW_ENOENT)
			goto out;
		have_parent = rc == 0;
		rc = 0;
	}

	int nthreads = o->threads > 0 ? o->threads : bw_ncpu();
	c.pool = bw_pool_new(nthreads);
	if (!c.pool) {
		rc = BW_ENOMEM;
		goto out;
	}
	/* a short queue keeps the walker (and the directories it holds open)
	 * close behind the workers */
	bw_pool_set_queue_max(c.pool, (size_t)nthreads * 8);
	if (!(root = calloc(1, sizeof *root))) {
		rc = BW_ENOMEM;
		goto out;
	}
	root->c = &c;
	root->pending = 1;
	if (have_parent) {
		root->had_prev = 1;
		root->prev_id = parent.tree;
		if (bw_repo_load_tree_ctx(r, c.walk_ctx, &parent.tree, &root->prev)) {
			bw_err_clear();
			memset(&root->prev, 0, sizeof root->prev);
		}
	}
	c.sum.start_ns = bw_now_ns();
	if (o->stdin_mode) {
		rc = backup_stdin(&c, root);
	} else {
		for (size_t i = 0; i < nabs && !rc; i++)
			rc = bw_vdir_add(&vroot, abs[i]);
		if (!rc)
			rc = walk_virtual(&c, root, &vroot);
	}
	if (rc)
		set_fatal(&c, rc, "walking the files");
	bw_pool_wait(c.pool);
	dir_child_done(root); /* encodes the root tree when all is done */
	bw_pool_free(c.pool);
	c.pool = NULL;
	if (c.fatal) {
		rc = c.fatal;
		bw_err_clear();
		bw_errf(rc, "%s", c.fatal_msg);
		goto out;
	}
	if (root->had_prev != 2) {
		rc = bw_errf(BW_EIO, "the root tree could not be stored");
		goto out;
	}

	/* flush every pack, then the index, then the snapshot */
	for (struct worker *w = c.workers; w && !rc; w = w->next)
		rc = finish_pack(&c, &w->pack);
	if (!rc)
		rc = finish_pack(&c, &c.tree_pack);
	if (!rc && !o->dry_run) {
		pthread_mutex_lock(&c.mu);
		rc = flush_index(&c);
		pthread_mutex_unlock(&c.mu);
	}
	if (rc)
		goto out;

	c.sum.end_ns = bw_now_ns();
	out->time_ns = o->time_ns ? o->time_ns : c.sum.start_ns;
	out->tree = root->prev_id;
	if (have_parent) {
		out->has_parent = 1;
		out->parent = parent.id;
	}
	struct passwd *pw = getpwuid(getuid());
	out->hostname = strdup(host);
	out->username = strdup(pw ? pw->pw_name : "");
	out->uid = getuid();
	out->gid = getgid();
	out->paths = abs;
	out->npaths = nabs;
	abs = NULL;
	out->tags = bw_strv_dup(o->tags, o->ntags);
	out->ntags = o->ntags;
	out->excludes = bw_strv_dup(o->excludes, o->nexcludes);
	out->nexcludes = o->nexcludes;
	out->program_version = strdup("bulwark " BW_VERSION);
	out->summary = c.sum;
	if (!out->hostname || !out->username || !out->tags || !out->excludes ||
	    !out->program_version) {
		rc = BW_ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&c.mu);
	progress(&c, NULL, 1);
	pthread_mutex_unlock(&c.mu);
	if (!o->dry_run)
		rc = bw_repo_save_snapshot(r, out);
out:
	if (c.pool)
		bw_pool_free(c.pool);
	if (root)
		dirjob_free(root);
	bw_vdir_free(&vroot);
	while (c.workers) {
		struct worker *w = c.workers;
		c.workers = w->next;
		if (w->pack)
			bw_pack_writer_abort(w->pack);
		bw_blob_ctx_free(w->bctx);
		bw_buf_release(&w->in);
		bw_buf_release(&w->sealed);
		free(w);
	}
	if (c.tree_pack)
		bw_pack_writer_abort(c.tree_pack);
	for (size_t i = 0; i < c.ndone; i++)
		free(c.done_packs[i].blobs);
	free(c.done_packs);
	free(c.index_files);
	bw_blob_ctx_free(c.tree_ctx);
	bw_blob_ctx_free(c.walk_ctx);
	bw_buf_release(&c.tree_sealed);
	for (size_t i = 0; abs && i < nabs; i++)
		free(abs[i]);
	free(abs);
	bw_snapshot_release(&parent);
	bw_refresher_stop(&refresh);
	bw_session_end(sess);
	pthread_mutex_destroy(&c.mu);
	if (rc)
		bw_snapshot_release(out);
	return rc;
}
