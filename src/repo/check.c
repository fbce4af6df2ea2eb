/* check: verify the repository's structure and, on request, its data.
 *
 * Structure: every index file decrypts and decodes; every pack the index
 * names exists and its header lists exactly the blobs the index says;
 * every snapshot decodes; every tree reachable from a snapshot is indexed
 * and decodes; every data blob a file needs is indexed; every plan
 * decodes.  Packs that no index names are counted, not reported: an
 * interrupted backup leaves them and prune removes them.
 *
 * Data (--read-data): every pack (or a subset) is read whole; its bytes
 * must hash to its name, and every blob in it must decrypt, decompress
 * and hash (HMAC) to its ID.  Packs are spread over one worker per CPU,
 * each with its own codec context.
 *
 * check never writes to the repository, not even a session lock. */
#include "maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chk {
	struct bw_repo *r;
	const struct bw_check_opts *o;
	struct bw_check_stats *st;
	pthread_mutex_t mu; /* guards reports, stats and progress */
	struct bw_progress prog;
};

static void report(void *arg, const char *what, const char *msg)
{
	struct chk *c = arg;
	pthread_mutex_lock(&c->mu);
	c->st->problems++;
	if (c->o->on_problem)
		c->o->on_problem(what, msg, c->o->problem_arg);
	pthread_mutex_unlock(&c->mu);
}

static void reportf(struct chk *c, const char *kind, const struct bw_id *id,
                    const char *fmt, ...) BW_PRINTF(4, 5);
static void reportf(struct chk *c, const char *kind, const struct bw_id *id,
                    const char *fmt, ...)
{
	char what[96], hex[2 * BW_ID_LEN + 1], msg[512];
	va_list ap;
	bw_id_hex(id, hex);
	snprintf(what, sizeof what, "%s %s", kind, hex);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	report(c, what, msg);
}

static void progress(struct chk *c, int final)
{
	if (!c->o->progress)
		return;
	c->prog.final = final;
	c->o->progress(&c->prog, c->o->progress_arg);
}

/* by offset, then ID: members of a group share an offset */
static int blob_cmp(const void *a, const void *b)
{
	const struct bw_pack_blob *x = a, *y = b;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return memcmp(x->id.b, y->id.b, BW_ID_LEN);
}

/* The pack's own header must list exactly what the index says. */
static void compare_header(struct chk *c, const struct bw_ixpack *p,
                           struct bw_pack_blob *hdr, size_t n)
{
	struct bw_pack_blob *ix = NULL;
	char hex[2 * BW_ID_LEN + 1];
	if (n != p->n) {
		reportf(c, "pack", &p->id, "header lists %zu blobs, the index %zu", n, p->n);
		return;
	}
	if (n && !(ix = malloc(n * sizeof *ix))) {
		reportf(c, "pack", &p->id, "out of memory comparing the header");
		return;
	}
	if (n)
		memcpy(ix, p->blobs, n * sizeof *ix);
	qsort(ix, n, sizeof *ix, blob_cmp);
	qsort(hdr, n, sizeof *hdr, blob_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!memcmp(ix[i].id.b, hdr[i].id.b, BW_ID_LEN) &&
		    ix[i].type == hdr[i].type && ix[i].grouped == hdr[i].grouped &&
		    ix[i].offset == hdr[i].offset &&
		    ix[i].length == hdr[i].length &&
		    ix[i].raw_length == hdr[i].raw_length)
			continue;
		bw_id_hex(&ix[i].id, hex);
		reportf(c, "pack", &p->id, "header does not match the index "
		        "(index blob %s at offset %u, length %u)", hex,
		        ix[i].offset, ix[i].length);
		break;
	}
	free(ix);
}

/* Packs named by the index: present, header readable and matching.
 * Sets bad[p] for unusable packs and seen[k] for listed packs indexed. */
static int check_packs(struct chk *c, struct bw_ixscan *s,
                       const struct bw_packfile *pf, size_t npf,
                       uint8_t *bad, uint8_t *seen)
{
	char name[2 * BW_ID_LEN + 1];
	c->prog.files_total = s->npacks;
	for (size_t i = 0; i < s->npacks; i++) {
		const struct bw_ixpack *p = &s->packs[i];
		struct bw_pack_blob *hdr = NULL;
		size_t n = 0;
		ssize_t k = bw_maint_find_pack(pf, npf, &p->id);
		c->st->packs++;
		c->prog.files_done = i + 1;
		progress(c, 0);
		if (k < 0) {
			bad[i] = 1;
			reportf(c, "pack", &p->id, "missing (named by the index, %zu blobs)", p->n);
			continue;
		}
		seen[k] = 1;
		bw_id_hex(&p->id, name);
		int rc = bw_pack_read_header(c->r->be, c->r->keys, name, &hdr, &n);
		if (rc == BW_ENOMEM)
			return rc;
		if (rc) {
			bad[i] = 1;
			bw_err_clear();
			reportf(c, "pack", &p->id, "header unreadable (size %llu bytes): "
			        "truncated or damaged", (unsigned long long)pf[k].size);
			continue;
		}
		compare_header(c, p, hdr, n);
		free(hdr);
	}
	return 0;
}

static int plan_one(void *arg, const char *name, uint64_t size)
{
	struct chk *c = arg;
	struct bw_buf b;
	struct bw_id *packs = NULL;
	size_t n;
	int64_t t;
	(void)size;
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_repo_load_obj(c->r, BW_OBJ_PLAN, name, &b);
	if (!rc)
		rc = bw_plan_decode(b.data, b.len, &t, &packs, &n);
	bw_buf_release(&b);
	free(packs);
	if (rc && rc != BW_ENOENT) {
		char what[80];
		snprintf(what, sizeof what, "plan %s", name);
		report(c, what, "damaged or malformed: backups refuse to run until it is removed");
	}
	bw_err_clear();
	return 0;
}

/* ---- read-data ---- */

struct rd {
	struct chk *c;
	struct bw_ixscan *scan;
	const struct bw_packfile *pf;
	size_t *sel, nsel, next;
	int fatal;
};

#define RD_WINDOW ((uint64_t)2 << 20) /* bytes read at once */

/* Blobs to verify: the pack's own header, else the index's list. */
static int rd_blobs(struct rd *d, const struct bw_packfile *f, const char *name,
                    struct bw_pack_blob **blobs, size_t *n)
{
	int rc = bw_pack_read_header(d->c->r->be, d->c->r->keys, name, blobs, n);
	if (!rc)
		return 0;
	bw_err_clear();
	reportf(d->c, "pack", &f->id, "header unreadable: truncated or damaged");
	uint32_t no;
	for (no = 0; no < d->scan->npacks; no++)
		if (!memcmp(d->scan->packs[no].id.b, f->id.b, BW_ID_LEN))
			break;
	if (no == d->scan->npacks || !d->scan->packs[no].n)
		return BW_ENOENT;
	*n = d->scan->packs[no].n;
	if (!(*blobs = malloc(*n * sizeof **blobs)))
		return BW_ENOMEM;
	memcpy(*blobs, d->scan->packs[no].blobs, *n * sizeof **blobs);
	return 0;
}

static int blob_off_cmp(const void *a, const void *b)
{
	const struct bw_pack_blob *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void rd_check_blob(struct rd *d, struct bw_blob_ctx *bc,
                          const struct bw_packfile *f,
                          const struct bw_pack_blob *x, const uint8_t *p,
                          struct bw_buf *pt)
{
	char hex[2 * BW_ID_LEN + 1];
	struct bw_id got;
	int rc = bw_blob_decode(bc, d->c->r->keys, &x->id, x->grouped, p, x->length,
	                        x->raw_length, pt);
	if (!rc) {
		bw_repo_blob_id(d->c->r, pt->data, pt->len, &got);
		if (memcmp(got.b, x->id.b, BW_ID_LEN))
			rc = BW_EAUTH;
	}
	if (rc) {
		bw_err_clear();
		bw_id_hex(&x->id, hex);
		reportf(d->c, "pack", &f->id, "blob %s damaged: %s", hex,
		        rc == BW_EAUTH ? "authentication failed" : bw_strerror(rc));
	}
}

/* Read [off, end) in windows, feeding the pack hash. */
static int rd_hash_range(struct rd *d, const char *name, struct bw_hash *h,
                         uint64_t off, uint64_t end, struct bw_buf *b)
{
	while (off < end) {
		size_t len = (size_t)(end - off < RD_WINDOW ? end - off : RD_WINDOW);
		bw_buf_reset(b);
		int rc = bw_be_read(d->c->r->be, BW_OBJ_PACK, name, off, len, b);
		if (rc)
			return rc;
		bw_hash_update(h, b->data, b->len);
		off += len;
	}
	return 0;
}

/* A pack is streamed through in windows of a few MiB: its SHA-256 must
 * equal its name, and every blob must decrypt, decompress and MAC to its
 * ID.  Memory stays at one window per worker whatever the pack size. */
static void rd_pack(struct rd *d, struct bw_blob_ctx *bc, const struct bw_packfile *f,
                    struct bw_buf *b, struct bw_buf *pt)
{
	char name[2 * BW_ID_LEN + 1];
	struct bw_pack_blob *blobs = NULL;
	struct bw_hash *h = NULL;
	struct bw_id got;
	size_t n = 0;
	uint64_t pos = 0;
	int rc = 0, hashing = 1;
	bw_id_hex(&f->id, name);
	if (rd_blobs(d, f, name, &blobs, &n))
		n = 0; /* still hash the bytes */
	if (n)
		qsort(blobs, n, sizeof *blobs, blob_off_cmp);
	if (!(h = bw_hash_new(d->c->r->hash))) {
		d->fatal = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !rc;) {
		const struct bw_pack_blob *x = &blobs[i];
		if ((uint64_t)x->offset + x->length > f->size) {
			char hex[2 * BW_ID_LEN + 1];
			bw_id_hex(&x->id, hex);
			reportf(d->c, "pack", &f->id, "blob %s lies beyond the end (truncated)", hex);
			i++;
			continue;
		}
		if (x->offset < pos) { /* overlapping list (damaged index): unhashed */
			bw_buf_reset(b);
			if (!(rc = bw_be_read(d->c->r->be, BW_OBJ_PACK, name, x->offset, x->length, b)))
				rd_check_blob(d, bc, f, x, b->data, pt);
			hashing = 0;
			i++;
			continue;
		}
		if (x->offset > pos && (rc = rd_hash_range(d, name, h, pos, x->offset, b)))
			break;
		/* a window of neighbouring blobs */
		size_t j = i + 1;
		uint64_t end = (uint64_t)x->offset + x->length;
		while (j < n &&
		       (blobs[j].offset == end ||
		        (bw_pack_same_bytes(blobs, j) &&
		         blobs[j].length == blobs[j - 1].length)) &&
		       (uint64_t)blobs[j].offset + blobs[j].length <= f->size &&
		       (uint64_t)blobs[j].offset + blobs[j].length - x->offset <= RD_WINDOW) {
			end = (uint64_t)blobs[j].offset + blobs[j].length;
			j++;
		}
		bw_buf_reset(b);
		if ((rc = bw_be_read(d->c->r->be, BW_OBJ_PACK, name, x->offset,
		                     (size_t)(end - x->offset), b)))
			break;
		bw_hash_update(h, b->data, b->len);
		for (size_t k = i; k < j; k++)
			rd_check_blob(d, bc, f, &blobs[k], b->data + (blobs[k].offset - x->offset), pt);
		pos = end;
		i = j;
	}
	if (!rc && pos < f->size)
		rc = rd_hash_range(d, name, h, pos, f->size, b);
	if (rc) {
		bw_err_clear();
		reportf(d->c, "pack", &f->id, "cannot be read: %s", bw_strerror(rc));
		goto out;
	}
	bw_hash_final(h, &got);
	h = NULL;
	if (hashing && memcmp(got.b, f->id.b, BW_ID_LEN))
		reportf(d->c, "pack", &f->id, "content does not match its name (damaged)");
out:
	if (h)
		bw_hash_final(h, &got);
	free(blobs);
}

static void rd_worker(void *arg)
{
	struct rd *d = arg;
	struct bw_blob_ctx *bc = bw_blob_ctx_new(0);
	struct bw_buf b, pt;
	bw_buf_init(&b, (size_t)BW_CHUNK_MAX_LIMIT + RD_WINDOW);
	bw_buf_init(&pt, (size_t)BW_CHUNK_MAX_LIMIT + BW_TREE_MAX_BYTES);
	for (;;) {
		pthread_mutex_lock(&d->c->mu);
		size_t i = d->next++;
		if (!bc)
			d->fatal = BW_ENOMEM;
		pthread_mutex_unlock(&d->c->mu);
		if (i >= d->nsel || !bc)
			break;
		const struct bw_packfile *f = &d->pf[d->sel[i]];
		rd_pack(d, bc, f, &b, &pt);
		pthread_mutex_lock(&d->c->mu);
		d->c->st->packs_read++;
		d->c->prog.files_done++;
		d->c->prog.bytes_done += f->size;
		progress(d->c, 0);
		pthread_mutex_unlock(&d->c->mu);
	}
	bw_buf_release(&b);
	bw_buf_release(&pt);
	bw_blob_ctx_free(bc);
}

static int read_data(struct chk *c, struct bw_ixscan *s,
                     const struct bw_packfile *pf, size_t npf)
{
	struct rd d;
	int nthreads = bw_ncpu(), rc = 0;
	memset(&d, 0, sizeof d);
	d.c = c;
	d.scan = s;
	d.pf = pf;
	if (!(d.sel = malloc((npf ? npf : 1) * sizeof *d.sel)))
		return BW_ENOMEM;
	memset(&c->prog, 0, sizeof c->prog);
	for (size_t i = 0; i < npf; i++) {
		if (c->o->subset_m &&
		    pf[i].id.b[0] % c->o->subset_m != c->o->subset_n - 1)
			continue;
		d.sel[d.nsel++] = i;
		c->prog.bytes_total += pf[i].size;
	}
	c->prog.files_total = d.nsel;
	if (nthreads < 1)
		nthreads = 1;
	struct bw_pool *pool = bw_pool_new(nthreads);
	if (!pool) {
		free(d.sel);
		return BW_ENOMEM;
	}
	for (int t = 0; t < nthreads && !rc; t++)
		rc = bw_pool_submit(pool, rd_worker, &d);
	bw_pool_free(pool); /* waits for the workers */
	if (!rc)
		rc = d.fatal;
	free(d.sel);
	return rc;
}

/* ---- the whole check ---- */

static int check_structure(struct chk *c, struct bw_ixscan *s,
                           const struct bw_packfile *pf, size_t npf,
                           uint8_t *bad, uint8_t *seen)
{
	struct bw_maint_walk w;
	struct bw_snapshot *snaps = NULL;
	size_t nsnaps = 0, ndamaged = 0;
	int rc;
	if ((rc = check_packs(c, s, pf, npf, bad, seen)))
		return rc;
	for (size_t k = 0; k < npf; k++)
		if (!seen[k])
			c->st->unreferenced_packs++;
	c->st->blobs = bw_index_count(s->x);
	if ((rc = bw_be_list(c->r->be, BW_OBJ_PLAN, plan_one, c)))
		return rc;
	if ((rc = bw_maint_snapshots(c->r, &snaps, &nsnaps, &ndamaged, report, c)))
		return rc;
	c->st->snapshots = nsnaps + ndamaged;
	memset(&w, 0, sizeof w);
	w.r = c->r;
	w.scan = s;
	w.bad_pack = bad;
	w.trees = bw_idset_new();
	w.data = bw_idset_new();
	w.report = report;
	w.arg = c;
	if (!w.trees || !w.data)
		rc = BW_ENOMEM;
	if (!rc)
		rc = bw_maint_walk(&w, snaps, nsnaps);
	/* problems reported through report() are already counted; those
	 * only counted by the walk (blobs in a reported pack) are not */
	c->st->trees = w.trees_done;
	bw_index_free(w.trees);
	bw_index_free(w.data);
	bw_snapshots_free(snaps, nsnaps);
	return rc;
}

int bw_check(struct bw_repo *r, const struct bw_check_opts *o,
             struct bw_check_stats *st)
{
	struct bw_check_opts def;
	struct bw_check_stats dst;
	struct bw_ixscan s;
	struct bw_packfile *pf = NULL;
	size_t npf = 0;
	uint8_t *bad = NULL, *seen = NULL;
	struct chk c;
	int rc;
	memset(&def, 0, sizeof def);
	if (!o)
		o = &def;
	if (!st)
		st = &dst;
	memset(st, 0, sizeof *st);
	memset(&s, 0, sizeof s);
	if (o->subset_m && (o->subset_n < 1 || o->subset_n > o->subset_m || o->subset_m > 256))
		return bw_errf(BW_EINVAL, "read-data subset %u/%u: need 1 <= n <= m <= 256",
		               o->subset_n, o->subset_m);
	memset(&c, 0, sizeof c);
	c.r = r;
	c.o = o;
	c.st = st;
	pthread_mutex_init(&c.mu, NULL);
	if ((rc = bw_ixscan_load(r, &s, report, &c)))
		goto out;
	if ((rc = bw_maint_list_packs(r, &pf, &npf)))
		goto out;
	bad = calloc(s.npacks ? s.npacks : 1, 1);
	seen = calloc(npf ? npf : 1, 1);
	if (!bad || !seen) {
		rc = BW_ENOMEM;
		goto out;
	}
	if ((rc = check_structure(&c, &s, pf, npf, bad, seen)))
		goto out;
	if (o->read_data && (rc = read_data(&c, &s, pf, npf)))
		goto out;
	progress(&c, 1);
	rc = st->problems ? BW_EDAMAGED : 0;
out:
	free(bad);
	free(seen);
	free(pf);
	bw_ixscan_release(&s);
	pthread_mutex_destroy(&c.mu);
	return rc;
}
