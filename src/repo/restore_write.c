/* Restore, the workers: write file contents and, with --verify, re-read
 * them.  A task is a run of small files of one batch, or a range of one
 * big file written at its offsets; a worker reads runs of blobs that lie
 * next to each other in a pack with one pread, then decrypts,
 * decompresses and pwrites each.  When a file is complete its metadata is
 * set through its descriptor.  Hard links are made by restore.c once the
 * batch is done. */
#include "restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN_MAX ((size_t)1 << 20)          /* bytes read from a pack at once */
#define TASK_BYTES ((uint64_t)4 << 20)     /* small files per task */
#define TASK_FILES 128
#define SPLIT_PART ((uint64_t)32 << 20)    /* big files: bytes per task */
#define ZERO_BLOCK 4096                    /* sparse: hole granularity */

/* A pool task: files f[0..nf), from blob b0 of f[0] to blob b1 of f[nf-1]. */
struct job {
	struct ctx *c;
	struct batch *b;
	struct rfile **f;
	size_t nf, b0, b1;
	int verify;
};

#define NRUNS 1                   /* pack runs a worker keeps */
#define PLAIN_KEEP (((size_t)2 << 20) + 8192) /* a larger plaintext buffer is freed */
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
	return fi + 1 == j->nf ? j->b1 : j->f[fi]->nseg;
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
	bw_id_hex(&s->id, hex);
	if (s->off != OFF_UNKNOWN && s->pack != BW_PACK_NONE)
		snprintf(where, sizeof where, "bytes %llu-%llu left as zeros",
		         (unsigned long long)s->off,
		         (unsigned long long)(s->off + s->raw));
	else
		snprintf(where, sizeof where, "its bytes are left as zeros");
	if (pid) {
		bw_id_hex(pid, pk);
		bw_rs_report(c, f->path, "blob %.16s in pack %.16s: %s; %s", hex, pk, why, where);
	} else {
		bw_rs_report(c, f->path, "blob %.16s: %s; %s", hex, why, where);
	}
	pthread_mutex_lock(&c->mu);
	f->damaged = 1;
	c->damaged = 1;
	pthread_mutex_unlock(&c->mu);
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
		return bw_pwrite_full(fd, p, n, off);
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
			int r = bw_pwrite_full(fd, p + start, i - start, off + start);
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
	    (r = bw_blob_decode(w->bc, c->r->keys, &s->id, s->grouped, p,
	                        s->plen, s->raw, &w->plain))) {
		damage(c, f, bi, r == BW_EAUTH ? "damaged (authentication failed)"
		                               : bw_rs_errmsg(r));
		bw_err_clear();
		return 0;
	}
	if ((r = write_data(fd, w->plain.data, s->raw, s->off, c->o->sparse))) {
		bw_rs_report(c, f->path, "write failed at offset %llu: %s",
		       (unsigned long long)s->off, bw_strerror(r));
		pthread_mutex_lock(&c->mu);
		f->damaged = 1;
		pthread_mutex_unlock(&c->mu);
		return 1;
	}
	*bytes += s->raw;
	/* the rare blob over 2 MiB leaves a buffer twice that size behind;
	 * two workers holding one each is most of a restore's peak memory */
	if (w->plain.cap > PLAIN_KEEP) {
		bw_wipe(w->plain.data, w->plain.cap);
		bw_buf_release(&w->plain);
	}
	return 0;
}

static int file_create(struct ctx *c, struct rfile *f)
{
	int fd = bw_rs_at_open(c, f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST && c->o->overwrite) {
		/* unlink rather than truncate: an old hard link elsewhere
		 * must not be written through */
		const char *name;
		int pfd = bw_rs_parent_open(c, f->path, &name);
		if (pfd >= 0 && !unlinkat(pfd, name, 0))
			fd = bw_rs_at_open(c, f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		int e = errno;
		bw_rs_parent_close(c, pfd);
		errno = e;
	}
	if (fd < 0) {
		if (errno == EEXIST)
			bw_rs_report(c, f->path, "already exists (use --overwrite to replace it)");
		else
			bw_rs_report(c, f->path, "cannot create: %s", strerror(errno));
	}
	return fd;
}

static void file_finish(struct ctx *c, struct rfile *f, int fd, uint64_t bytes)
{
	if ((c->o->sparse || f->damaged) && ftruncate(fd, (off_t)f->size))
		bw_rs_report(c, f->path, "cannot set the size: %s", strerror(errno));
	bw_rs_meta_fd(c, fd, f->path, &f->m);
	bw_rs_count(c, &c->st.files, 1);
	if (close(fd))
		bw_rs_report(c, f->path, "close failed: %s", strerror(errno));
	bw_rs_progress(c, 1, bytes, f->path, 0);
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
		bw_rs_progress(c, 1, 0, f->path, 0);
		return;
	}
	for (size_t bi = job_first(j, fi); bi < job_end(j, fi); bi++)
		if (write_blob(c, w, j, fi, bi, fd, &bytes))
			break;
	bw_rs_count(c, &c->st.bytes, bytes);
	if (split) {
		pthread_mutex_lock(&c->mu);
		int last = --f->parts_left == 0;
		pthread_mutex_unlock(&c->mu);
		bw_rs_progress(c, 0, bytes, f->path, 0);
		if (!last)
			return;
		bytes = 0;
	}
	file_finish(c, f, fd, bytes);
}

/* ---- verification ---- */

/* Re-read a restored file and compare each blob's ID with the snapshot's. */
static void verify_file(struct ctx *c, struct wstate *w, struct rfile *f)
{
	struct stat st;
	int bad = 0, r;
	/* O_NOATIME: reading must not move the atime just restored */
	int fd = bw_rs_at_open(c, f->path, O_RDONLY | O_NOATIME, 0);
	if (fd < 0 && errno == EPERM)
		fd = bw_rs_at_open(c, f->path, O_RDONLY, 0);
	if (fd < 0) {
		bw_rs_report(c, f->path, "verify: cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) || (uint64_t)st.st_size != f->size) {
		bw_rs_report(c, f->path, "verify: size is %llu, the snapshot has %llu",
		       (unsigned long long)st.st_size, (unsigned long long)f->size);
		bad = 1;
	}
	for (size_t i = 0; i < f->nseg && !bad; i++) {
		const struct seg *s = &f->segs[i];
		struct bw_id id;
		bw_buf_reset(&w->plain);
		if ((r = bw_buf_reserve(&w->plain, s->raw)) ||
		    (s->raw && (r = bw_pread_full(fd, w->plain.data, s->raw, s->off)))) {
			bw_rs_report(c, f->path, "verify: cannot read bytes %llu-%llu: %s",
			       (unsigned long long)s->off,
			       (unsigned long long)(s->off + s->raw), bw_strerror(r));
			bad = 1;
			break;
		}
		bw_repo_blob_id(c->r, w->plain.data, s->raw, &id);
		if (bw_ct_cmp(id.b, s->id.b, BW_ID_LEN)) {
			bw_rs_report(c, f->path, "verify: bytes %llu-%llu differ from the snapshot",
			       (unsigned long long)s->off,
			       (unsigned long long)(s->off + s->raw));
			bad = 1;
		}
	}
	if (!bad)
		bw_rs_count(c, &c->st.verified, 1);
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
	struct batch *b = j->b;
	free(j->f);
	free(j);
	pthread_mutex_lock(&c->mu);
	if (!--b->tasks)
		pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->mu);
}

static int submit(struct ctx *c, struct batch *b, struct rfile **f,
                  size_t nf, size_t b0, size_t b1, int verify)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j || !(j->f = malloc(nf * sizeof *f))) {
		free(j);
		return BW_ENOMEM;
	}
	memcpy(j->f, f, nf * sizeof *f);
	j->c = c;
	j->b = b;
	j->nf = nf;
	j->b0 = b0;
	j->b1 = b1;
	j->verify = verify;
	pthread_mutex_lock(&c->mu);
	b->tasks++;
	pthread_mutex_unlock(&c->mu);
	int r = bw_pool_submit(c->pool, job_task, j);
	if (r) {
		pthread_mutex_lock(&c->mu);
		b->tasks--;
		pthread_mutex_unlock(&c->mu);
		free(j->f);
		free(j);
	}
	return r;
}

/* A big file: created here, then written in ranges by several workers
 * through one shared descriptor; the last part to finish closes it. */
static int submit_split(struct ctx *c, struct batch *b, struct rfile *f)
{
	size_t nc = f->nseg, parts = 0, b0 = 0;
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
		bw_rs_progress(c, 1, 0, f->path, 0);
		return 0;
	}
	f->fd = fd;
	f->parts_left = (int)parts;
	acc = 0;
	for (size_t i = 0; i < nc; i++) {
		acc += f->segs[i].raw;
		if (acc >= SPLIT_PART || i + 1 == nc) {
			int r = submit(c, b, &f, 1, b0, i + 1, 0);
			if (r)
				return r;
			b0 = i + 1;
			acc = 0;
		}
	}
	return 0;
}

int bw_rs_submit_batch(struct ctx *c, struct batch *b, int verify)
{
	struct rfile *task[TASK_FILES];
	size_t nt = 0;
	uint64_t bytes = 0;
	int r = 0;
	for (size_t i = 0; i < b->n && !r; i++) {
		struct rfile *f = b->f[i];
		if (verify && (f->failed || f->damaged))
			continue;
		if (!verify && c->nthreads > 1 && f->nseg > 1 &&
		    f->size >= 2 * SPLIT_PART) {
			r = submit_split(c, b, f);
			continue;
		}
		task[nt++] = f;
		bytes += f->size;
		if (nt == TASK_FILES || bytes >= TASK_BYTES) {
			r = submit(c, b, task, nt, 0, task[nt - 1]->nseg, verify);
			nt = 0;
			bytes = 0;
		}
	}
	if (!r && nt)
		r = submit(c, b, task, nt, 0, task[nt - 1]->nseg, verify);
	return r;
}

void bw_rs_batch_wait(struct ctx *c, struct batch *b)
{
	pthread_mutex_lock(&c->mu);
	while (b->tasks)
		pthread_cond_wait(&c->done, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

int bw_rs_workers_new(struct ctx *c)
{
	for (int i = 0; i < c->nthreads; i++) {
		struct wstate *w = wstate_new();
		if (!w)
			return BW_ENOMEM;
		wstate_put(c, w);
	}
	if (!(c->pool = bw_pool_new(c->nthreads)))
		return BW_ENOMEM;
	return 0;
}

/* Waits for the tasks still queued or running. */
void bw_rs_workers_free(struct ctx *c)
{
	bw_pool_free(c->pool);
	c->pool = NULL;
	while (c->idle) {
		struct wstate *w = c->idle;
		c->idle = w->next;
		wstate_free(w);
	}
}
