/* prune: delete packs that no snapshot needs, without an exclusive lock.
 *
 * Backups keep running while prune works, so deletion happens in two
 * phases separated by a deletion plan (plans/<id>, see plan.c):
 *
 * Sessions.  Every backup writes a session lock (locks/<id>: "started"
 * and "refreshed" times, host, pid) BEFORE it loads the index and the
 * plans, and removes it when done.  A backup never deduplicates against a
 * pack named by a plan it has seen: it drops those packs from its
 * in-memory index and stores such blobs again.
 *
 * Phase 1 (every run).  Start our own "prune" session.  Load every
 * snapshot, then the index (a snapshot is written after the index files
 * it needs, so this order never misses a blob), and mark every tree and
 * data blob reachable from a snapshot.  Packs not yet in a plan become
 * candidates when none of their blobs is used, or when they are not in
 * any index at all (left by an interrupted backup).  Packs whose unused
 * share of bytes exceeds max_unused are repacked: their used blobs are
 * copied as stored (the blob ID is the AEAD's associated data, so the
 * bytes stay valid anywhere) into new packs, the new packs are synced,
 * an index file names them, and the old packs become candidates.  The
 * candidates go into a new plan object stamped with the current time T.
 *
 * Phase 2 (for every plan, the new one included).  A plan with time T
 * can complete once no session lock exists that started before
 * T + 60 s (the margin covers the time it took to write the plan and
 * clock skew between hosts) and is still alive, and no other prune is
 * alive at all.  Any session that started later has seen the plan, so it
 * cannot have used a planned pack.  A session is dead when its host is
 * ours and its process is gone, or when it was last refreshed longer ago
 * than stale_after (default 30 minutes).  Then, again: load every
 * snapshot (new ones may have appeared while the plan waited), the
 * index, mark; a planned pack holding a reachable blob that no kept pack
 * holds is rescued (dropped from the deletion).  Finally, in this order:
 *   1. write one index file that supersedes every index file loaded and
 *      lists every pack except those being deleted;
 *   2. delete the superseded index files;
 *   3. delete the planned packs;
 *   4. delete the plan.
 * A kill between any two steps leaves a repository that `check` passes:
 * after 1 the old files are ignored, after 2 the deleted packs are
 * merely unreferenced, after 3 the plan names packs that are gone (a
 * later prune finishes it).  Index files written by backups meanwhile
 * are not superseded and stay.
 *
 * Two prunes never complete plans at the same time: phase 2 waits while
 * another live prune session exists.  A damaged snapshot, a damaged
 * index file or a missing tree makes prune delete nothing: what it
 * cannot read, it cannot prove unused. */
#include "maint.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLAN_MARGIN_NS ((int64_t)60 * 1000000000)
#define STALE_DEFAULT_NS ((int64_t)30 * 60 * 1000000000)
#define LOCK_ATTEMPTS 5

enum pmode { P_KEEP, P_DROP, P_REPACK, P_PLANNED, P_MISSING };

struct plan {
	char name[2 * BW_ID_LEN + 1];
	int64_t time_ns;
	struct bw_id *packs;
	size_t n;
	int ready;
};

struct plans {
	struct bw_repo *r;
	struct plan *v;
	size_t n, cap;
	int dry_run;
};

struct pr {
	struct bw_repo *r;
	struct bw_prune_opts o;
	struct bw_prune_stats *st;
	struct bw_session *sess;
	char host[256];
	struct bw_packfile *pf; /* packs on the backend */
	size_t npf;
};

struct marks {
	struct bw_ixscan scan;
	struct bw_index *trees, *data; /* reachable blobs */
};

static void id_short(const struct bw_id *id, char out[17])
{
	char hex[2 * BW_ID_LEN + 1];
	bw_id_hex(id, hex);
	memcpy(out, hex, 16);
	out[16] = 0;
}

static void warn_report(void *arg, const char *what, const char *msg)
{
	int *n = arg;
	(*n)++;
	bw_warn("%s: %s", what, msg);
}

static void marks_release(struct marks *m)
{
	bw_ixscan_release(&m->scan);
	bw_index_free(m->trees);
	bw_index_free(m->data);
	memset(m, 0, sizeof *m);
}

static int reachable(struct marks *m, const struct bw_id *id)
{
	return bw_idset_has(m->data, id) || bw_idset_has(m->trees, id);
}

/* Snapshots first, then the index, then every tree: any damage stops
 * prune, since what cannot be read cannot be proven unused. */
static int mark(struct pr *p, struct marks *m)
{
	struct bw_snapshot *snaps = NULL;
	size_t nsnaps = 0, ndamaged = 0;
	struct bw_maint_walk w;
	int bad = 0, rc;
	memset(m, 0, sizeof *m);
	if ((rc = bw_maint_snapshots(p->r, &snaps, &nsnaps, &ndamaged, warn_report, &bad)))
		return rc;
	if (ndamaged) {
		rc = bw_errf(BW_EDAMAGED, "%zu snapshot%s cannot be read (see above); prune "
		             "deletes nothing until `bulwark check` passes", ndamaged,
		             ndamaged == 1 ? "" : "s");
		goto out;
	}
	if ((rc = bw_ixscan_load(p->r, &m->scan, warn_report, &bad)))
		goto out;
	if (bad) {
		rc = bw_errf(BW_EDAMAGED, "damaged index files (see above); prune deletes "
		             "nothing until `bulwark check` passes");
		goto out;
	}
	memset(&w, 0, sizeof w);
	w.r = p->r;
	w.scan = &m->scan;
	w.trees = m->trees = bw_idset_new();
	w.data = m->data = bw_idset_new();
	w.report = warn_report;
	w.arg = &bad;
	w.progress = p->o.progress;
	w.progress_arg = p->o.progress_arg;
	if (!m->trees || !m->data) {
		rc = BW_ENOMEM;
		goto out;
	}
	if ((rc = bw_maint_walk(&w, snaps, nsnaps)))
		goto out;
	if (w.problems)
		rc = bw_errf(BW_EDAMAGED, "snapshots need %llu trees or blobs that cannot be "
		             "found (see above); prune deletes nothing until `bulwark check` passes",
		             (unsigned long long)w.problems);
out:
	bw_snapshots_free(snaps, nsnaps);
	if (rc)
		marks_release(m);
	return rc;
}

/* ---- plans ---- */

static void plans_free(struct plans *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->v[i].packs);
	free(pl->v);
	pl->v = NULL;
	pl->n = pl->cap = 0;
}

static int plans_push(struct plans *pl, const char *name, int64_t t,
                      struct bw_id *packs, size_t n)
{
	if (pl->n == pl->cap) {
		size_t nc = pl->cap ? pl->cap * 2 : 8;
		void *v = realloc(pl->v, nc * sizeof *pl->v);
		if (!v)
			return BW_ENOMEM;
		pl->v = v;
		pl->cap = nc;
	}
	struct plan *x = &pl->v[pl->n++];
	memset(x, 0, sizeof *x);
	snprintf(x->name, sizeof x->name, "%s", name);
	x->time_ns = t;
	x->packs = packs;
	x->n = n;
	return 0;
}

static int plan_load(void *arg, const char *name, uint64_t size)
{
	struct plans *pl = arg;
	struct bw_buf b;
	struct bw_id *packs = NULL;
	size_t n = 0;
	int64_t t = 0;
	(void)size;
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_repo_load_obj(pl->r, BW_OBJ_PLAN, name, &b);
	if (!rc)
		rc = bw_plan_decode(b.data, b.len, &t, &packs, &n);
	bw_buf_release(&b);
	if (rc == BW_ENOENT) { /* completed by another prune meanwhile */
		bw_err_clear();
		return 0;
	}
	if (rc == BW_ENOMEM)
		return rc;
	if (rc) {
		/* Removing an unreadable plan only keeps its packs: safe. */
		bw_warn("plan %s: %s; %s", name, *bw_err_msg() ? bw_err_msg() : bw_strerror(rc),
		        pl->dry_run ? "it would be removed" : "removing it (its packs are kept)");
		bw_err_clear();
		if (!pl->dry_run && bw_be_remove(pl->r->be, BW_OBJ_PLAN, name))
			bw_err_clear();
		return 0;
	}
	rc = plans_push(pl, name, t, packs, n);
	if (rc)
		free(packs);
	return rc;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(((const struct bw_id *)a)->b, ((const struct bw_id *)b)->b, BW_ID_LEN);
}

static int id_in(const struct bw_id *v, size_t n, const struct bw_id *id)
{
	return n && bsearch(id, v, n, sizeof *v, id_cmp) != NULL;
}

/* The union of the packs of plans (only ready ones if ready_only), sorted
 * and without duplicates. */
static int plan_union(const struct plans *pl, int ready_only, struct bw_id **out,
                      size_t *nout)
{
	size_t total = 0, k = 0;
	for (size_t i = 0; i < pl->n; i++)
		if (!ready_only || pl->v[i].ready)
			total += pl->v[i].n;
	struct bw_id *v = malloc((total ? total : 1) * sizeof *v);
	if (!v)
		return BW_ENOMEM;
	for (size_t i = 0; i < pl->n; i++)
		if (!ready_only || pl->v[i].ready)
			for (size_t j = 0; j < pl->v[i].n; j++)
				v[k++] = pl->v[i].packs[j];
	if (k)
		qsort(v, k, sizeof *v, id_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || memcmp(v[u - 1].b, v[i].b, BW_ID_LEN))
			v[u++] = v[i];
	*out = v;
	*nout = u;
	return 0;
}

static uint64_t pack_size(const struct pr *p, const struct bw_id *id)
{
	ssize_t k = bw_maint_find_pack(p->pf, p->npf, id);
	return k < 0 ? 0 : p->pf[k].size;
}

/* ---- phase 1 ---- */

struct repack {
	struct pr *p;
	struct bw_pack_writer *w;
	struct bw_index_pack *done;
	size_t ndone, capdone;
	struct bw_blob_ctx *bc; /* opens blobs, seals new groups */
	struct bw_buf pack, pt;
};

static int repack_finish_pack(struct repack *rp)
{
	struct bw_pack_blob *blobs = NULL;
	struct bw_id id;
	size_t n = 0;
	struct bw_pack_writer *w = rp->w;
	rp->w = NULL;
	if (!w)
		return 0;
	if (!bw_pack_writer_count(w)) {
		bw_pack_writer_abort(w);
		return 0;
	}
	if (rp->ndone == rp->capdone) {
		size_t nc = rp->capdone ? rp->capdone * 2 : 16;
		void *v = realloc(rp->done, nc * sizeof *rp->done);
		if (!v) {
			bw_pack_writer_abort(w);
			return BW_ENOMEM;
		}
		rp->done = v;
		rp->capdone = nc;
	}
	int rc = bw_pack_writer_finish(w, rp->p->r->keys, &id, &blobs, &n);
	if (rc)
		return rc;
	rp->done[rp->ndone].id = id;
	rp->done[rp->ndone].blobs = blobs;
	rp->done[rp->ndone].n = n;
	rp->ndone++;
	return 0;
}

/* Copy pack x's used blobs that no kept pack holds.  A blob that fails to
 * decrypt keeps the whole old pack (returns 1): damage is check's to
 * report, not prune's to spread. */
static int repack_one(struct repack *rp, struct marks *m, struct bw_index *avail,
                      const struct bw_ixpack *x)
{
	char name[2 * BW_ID_LEN + 1];
	int rc;
	bw_id_hex(&x->id, name);
	bw_buf_reset(&rp->pack);
	if ((rc = bw_be_read(rp->p->r->be, BW_OBJ_PACK, name, 0, 0, &rp->pack)))
		return rc;
	for (size_t j = 0; j < x->n; j++) {
		const struct bw_pack_blob *b = &x->blobs[j];
		if (!reachable(m, &b->id) || bw_idset_has(avail, &b->id))
			continue;
		if ((uint64_t)b->offset + b->length > rp->pack.len ||
		    bw_blob_decode(rp->bc, rp->p->r->keys, &b->id, b->grouped,
		                   rp->pack.data + b->offset,
		                   b->length, b->raw_length, &rp->pt)) {
			bw_err_clear();
			bw_warn("pack %s: a blob is damaged; the pack is kept (run `bulwark check --read-data`)", name);
			return 1;
		}
		if (!rp->w && (rc = bw_pack_writer_new(rp->p->r->be, rp->p->r->hash, &rp->w)))
			return rc;
		/* a group member moves alone: it joins a new group (the old
		 * group may hold blobs nothing needs) */
		if (b->grouped)
			rc = bw_pack_writer_add_grouped(rp->w, rp->bc, rp->p->r->keys,
			                                b->type, &b->id, rp->pt.data,
			                                rp->pt.len);
		else
			rc = bw_pack_writer_add(rp->w, b->type, &b->id,
			                        rp->pack.data + b->offset, b->length,
			                        b->raw_length);
		if (rc)
			return rc;
		if ((rc = bw_idset_add(avail, &b->id)) < 0)
			return rc;
		if (bw_pack_writer_size(rp->w) >= BW_PACK_TARGET &&
		    (rc = repack_finish_pack(rp)))
			return rc;
	}
	return 0;
}

static int repack(struct pr *p, struct marks *m, enum pmode *mode, struct bw_index *avail)
{
	struct repack rp;
	struct bw_id iid;
	int rc = 0;
	memset(&rp, 0, sizeof rp);
	rp.p = p;
	bw_buf_init(&rp.pack, BW_BUF_MAX_DEFAULT);
	bw_buf_init(&rp.pt, (size_t)BW_CHUNK_MAX_LIMIT + BW_TREE_MAX_BYTES);
	if (!(rp.bc = bw_blob_ctx_new(p->r->compression))) {
		rc = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->scan.npacks && !rc; i++) {
		if (mode[i] != P_REPACK)
			continue;
		rc = repack_one(&rp, m, avail, &m->scan.packs[i]);
		if (rc == 1) {
			mode[i] = P_KEEP;
			rc = 0;
		} else if (!rc) {
			mode[i] = P_DROP;
			p->st->packs_repacked++;
		}
	}
	if (!rc)
		rc = repack_finish_pack(&rp);
	/* new packs durable before the index names them, the index durable
	 * (written atomically) before the plan names the old packs */
	if (!rc && rp.ndone && !(rc = bw_be_sync(p->r->be)))
		rc = bw_repo_write_index(p->r, NULL, 0, rp.done, rp.ndone, &iid);
out:
	if (rp.w)
		bw_pack_writer_abort(rp.w);
	for (size_t i = 0; i < rp.ndone; i++)
		free(rp.done[i].blobs);
	free(rp.done);
	bw_blob_ctx_free(rp.bc);
	bw_buf_release(&rp.pack);
	bw_buf_release(&rp.pt);
	return rc;
}

/* Decide each indexed pack's fate; fills avail with kept packs' blobs. */
static int classify(struct pr *p, struct marks *m, const struct bw_id *planned,
                    size_t nplanned, enum pmode *mode, uint8_t *indexed,
                    struct bw_index *avail)
{
	int rc;
	for (size_t i = 0; i < m->scan.npacks; i++) {
		const struct bw_ixpack *x = &m->scan.packs[i];
		ssize_t k = bw_maint_find_pack(p->pf, p->npf, &x->id);
		uint64_t used = 0, unused = 0;
		if (k >= 0)
			indexed[k] = 1;
		if (k < 0) {
			mode[i] = P_MISSING; /* check reports it */
			continue;
		}
		if (id_in(planned, nplanned, &x->id)) {
			mode[i] = P_PLANNED;
			continue;
		}
		/* a group's bytes count once: used if any member is */
		for (size_t j = 0; j < x->n;) {
			const struct bw_pack_blob *b = &x->blobs[j];
			int live = reachable(m, &b->id);
			size_t e = j + 1;
			while (e < x->n && bw_pack_same_bytes(x->blobs, e))
				live |= reachable(m, &x->blobs[e++].id);
			if (live)
				used += b->length;
			else
				unused += b->length;
			j = e;
		}
		if (!used)
			mode[i] = P_DROP;
		else if (p->o.max_unused < 1.0 &&
		         (double)unused > p->o.max_unused * (double)(used + unused))
			mode[i] = P_REPACK;
		else
			mode[i] = P_KEEP;
		if (mode[i] != P_KEEP)
			continue;
		for (size_t j = 0; j < x->n; j++)
			if ((rc = bw_idset_add(avail, &x->blobs[j].id)) < 0)
				return rc;
	}
	return 0;
}

static int write_plan(struct pr *p, struct plans *pl, struct bw_id *cand, size_t n)
{
	struct bw_buf b;
	struct bw_id id;
	char name[2 * BW_ID_LEN + 1];
	int64_t t = bw_now_ns();
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_plan_encode(t, cand, n, &b);
	if (!rc)
		rc = bw_repo_save_obj(p->r, BW_OBJ_PLAN, b.data, b.len, &id);
	bw_buf_release(&b);
	if (rc)
		return rc;
	bw_id_hex(&id, name);
	struct bw_id *copy = malloc(n * sizeof *copy);
	if (!copy)
		return BW_ENOMEM;
	memcpy(copy, cand, n * sizeof *copy);
	rc = plans_push(pl, name, t, copy, n);
	if (rc)
		free(copy);
	return rc;
}

static int phase1(struct pr *p, struct plans *pl)
{
	struct marks m;
	struct bw_id *planned = NULL, *cand = NULL;
	size_t nplanned = 0, ncand = 0;
	enum pmode *mode = NULL;
	uint8_t *indexed = NULL;
	struct bw_index *avail = NULL;
	int rc;
	if ((rc = mark(p, &m)))
		return rc;
	p->st->blobs_kept = bw_index_count(m.trees) + bw_index_count(m.data);
	if ((rc = plan_union(pl, 0, &planned, &nplanned)))
		goto out;
	mode = calloc(m.scan.npacks ? m.scan.npacks : 1, sizeof *mode);
	indexed = calloc(p->npf ? p->npf : 1, 1);
	cand = malloc((m.scan.npacks + p->npf + 1) * sizeof *cand);
	avail = bw_idset_new();
	if (!mode || !indexed || !cand || !avail) {
		rc = BW_ENOMEM;
		goto out;
	}
	if ((rc = classify(p, &m, planned, nplanned, mode, indexed, avail)))
		goto out;
	if (p->o.dry_run) {
		for (size_t i = 0; i < m.scan.npacks; i++)
			p->st->packs_repacked += mode[i] == P_REPACK;
	} else if ((rc = repack(p, &m, mode, avail))) {
		goto out;
	}
	for (size_t i = 0; i < m.scan.npacks; i++)
		if (mode[i] == P_DROP || (p->o.dry_run && mode[i] == P_REPACK))
			cand[ncand++] = m.scan.packs[i].id;
	for (size_t k = 0; k < p->npf; k++) /* in no index: interrupted backups */
		if (!indexed[k] && !id_in(planned, nplanned, &p->pf[k].id))
			cand[ncand++] = p->pf[k].id;
	p->st->packs_planned = ncand;
	for (size_t i = 0; i < ncand && p->o.dry_run; i++)
		p->st->bytes_pending += pack_size(p, &cand[i]);
	if (ncand && !p->o.dry_run)
		rc = write_plan(p, pl, cand, ncand);
out:
	free(planned);
	free(cand);
	free(mode);
	free(indexed);
	bw_index_free(avail);
	marks_release(&m);
	return rc;
}

/* ---- sessions ---- */

struct sess {
	char kind[32], host[256];
	long pid;
	int64_t started, refreshed;
	int unreadable;
	char name[2 * BW_ID_LEN + 1];
};

struct sessions {
	struct bw_repo *r;
	struct sess *v;
	size_t n, cap;
	int vanished;
};

static void sess_parse(struct sess *s, const struct bw_buf *b)
{
	json_error_t e;
	json_t *j = json_loadb((const char *)b->data, b->len, 0, &e);
	const char *kind = NULL, *host = NULL, *st = NULL, *rf = NULL;
	json_int_t pid = 0;
	s->unreadable = 1;
	if (!j || json_unpack(j, "{s:s,s:s,s:I,s:s,s:s}", "kind", &kind, "host", &host,
	                      "pid", &pid, "started", &st, "refreshed", &rf) ||
	    bw_time_parse(st, &s->started) || bw_time_parse(rf, &s->refreshed))
		goto out;
	snprintf(s->kind, sizeof s->kind, "%s", kind);
	snprintf(s->host, sizeof s->host, "%s", host);
	s->pid = (long)pid;
	s->unreadable = 0;
out:
	json_decref(j);
}

static int sess_one(void *arg, const char *name, uint64_t size)
{
	struct sessions *l = arg;
	struct bw_buf b;
	(void)size;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, nc * sizeof *l->v);
		if (!v)
			return BW_ENOMEM;
		l->v = v;
		l->cap = nc;
	}
	struct sess *s = &l->v[l->n];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_repo_load_obj(l->r, BW_OBJ_LOCK, name, &b);
	if (rc == BW_ENOENT) {
		/* ended, or refreshed (new lock written first): list again */
		l->vanished = 1;
		bw_err_clear();
		bw_buf_release(&b);
		return 0;
	}
	if (rc == BW_ENOMEM) {
		bw_buf_release(&b);
		return rc;
	}
	bw_err_clear();
	if (rc)
		s->unreadable = 1;
	else
		sess_parse(s, &b);
	bw_buf_release(&b);
	l->n++;
	return 0;
}

static int sessions_load(struct pr *p, struct sessions *l)
{
	for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
		free(l->v);
		memset(l, 0, sizeof *l);
		l->r = p->r;
		int rc = bw_be_list(p->r->be, BW_OBJ_LOCK, sess_one, l);
		if (rc)
			return rc;
		if (!l->vanished)
			return 0;
	}
	return bw_errf(BW_EBUSY, "session locks keep changing; try again later");
}

/* Dead: our host and no such process, or not refreshed for too long. */
static int sess_dead(const struct pr *p, const struct sess *s, int64_t now)
{
	if (s->unreadable)
		return 0; /* cannot tell: assume it runs */
	if (!strcmp(s->host, p->host) && s->pid > 0 &&
	    kill((pid_t)s->pid, 0) && errno == ESRCH)
		return 1;
	return now - s->refreshed > p->o.stale_after_ns;
}

static int sess_own(const struct pr *p, const struct sess *s)
{
	return !s->unreadable && !strcmp(s->host, p->host) && s->pid == (long)getpid() &&
	       !strcmp(s->kind, "prune");
}

/* Mark ready plans; count sessions that waiting plans wait for. */
static int plans_readiness(struct pr *p, struct plans *pl)
{
	struct sessions l;
	int64_t now = bw_now_ns();
	int other_prune = 0, rc;
	memset(&l, 0, sizeof l);
	if ((rc = sessions_load(p, &l)))
		return rc;
	uint8_t *blocking = calloc(l.n ? l.n : 1, 1);
	if (!blocking) {
		free(l.v);
		return BW_ENOMEM;
	}
	for (size_t k = 0; k < l.n; k++)
		if (!sess_own(p, &l.v[k]) && !sess_dead(p, &l.v[k], now) &&
		    (l.v[k].unreadable || !strcmp(l.v[k].kind, "prune"))) {
			other_prune = 1;
			blocking[k] = 1;
		}
	for (size_t i = 0; i < pl->n; i++) {
		struct plan *x = &pl->v[i];
		x->ready = !other_prune;
		for (size_t k = 0; k < l.n; k++) {
			const struct sess *s = &l.v[k];
			if (sess_own(p, s) || sess_dead(p, s, now))
				continue;
			if (s->unreadable || s->started < x->time_ns + PLAN_MARGIN_NS) {
				x->ready = 0;
				blocking[k] = 1;
			}
		}
	}
	for (size_t k = 0; k < l.n; k++) {
		if (!blocking[k])
			continue;
		p->st->sessions_waiting++;
		char ts[40];
		bw_time_format_local(l.v[k].started, ts);
		if (l.v[k].unreadable)
			bw_warn("lock %s cannot be read; prune waits for it. If no backup is "
			        "running, delete locks/%s in the repository", l.v[k].name, l.v[k].name);
		else
			bw_info("waiting for %s on %s (pid %ld, started %s)", l.v[k].kind,
			        l.v[k].host, l.v[k].pid, ts);
	}
	free(blocking);
	free(l.v);
	return 0;
}

/* ---- phase 2 ---- */

/* Keep planned packs that hold a reachable blob no kept pack holds. */
static int rescue(struct pr *p, struct marks *m, const struct bw_id *del, size_t ndel,
                  uint8_t *deleting)
{
	struct bw_index *avail = bw_idset_new();
	int rc = 0;
	if (!avail)
		return BW_ENOMEM;
	for (size_t i = 0; i < m->scan.npacks && rc >= 0; i++) {
		const struct bw_ixpack *x = &m->scan.packs[i];
		deleting[i] = id_in(del, ndel, &x->id);
		if (deleting[i] || bw_maint_find_pack(p->pf, p->npf, &x->id) < 0)
			continue;
		for (size_t j = 0; j < x->n && rc >= 0; j++)
			rc = bw_idset_add(avail, &x->blobs[j].id);
	}
	for (size_t i = 0; i < m->scan.npacks && rc >= 0; i++) {
		const struct bw_ixpack *x = &m->scan.packs[i];
		int need = 0;
		if (!deleting[i])
			continue;
		for (size_t j = 0; j < x->n && !need; j++)
			need = reachable(m, &x->blobs[j].id) && !bw_idset_has(avail, &x->blobs[j].id);
		if (!need)
			continue;
		char sh[17];
		id_short(&x->id, sh);
		bw_info("pack %s: needed by a snapshot made since it was planned; kept", sh);
		deleting[i] = 0;
		for (size_t j = 0; j < x->n && rc >= 0; j++)
			rc = bw_idset_add(avail, &x->blobs[j].id);
	}
	bw_index_free(avail);
	return rc < 0 ? rc : 0;
}

/* Steps 1 and 2: one index file superseding all that were loaded. */
static int rewrite_index(struct pr *p, struct marks *m, const uint8_t *deleting)
{
	struct bw_index_pack *keep = malloc((m->scan.npacks + 1) * sizeof *keep);
	struct bw_id *sup = malloc((m->scan.nfiles + 1) * sizeof *sup);
	size_t nkeep = 0, nsup = 0;
	struct bw_id id;
	char name[2 * BW_ID_LEN + 1];
	int rc = 0;
	if (!keep || !sup) {
		rc = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->scan.npacks; i++) {
		if (deleting[i]) {
			p->st->blobs_removed += m->scan.packs[i].n;
			continue;
		}
		keep[nkeep].id = m->scan.packs[i].id;
		keep[nkeep].blobs = m->scan.packs[i].blobs;
		keep[nkeep].n = m->scan.packs[i].n;
		nkeep++;
	}
	for (size_t i = 0; i < m->scan.nfiles; i++)
		if (m->scan.files[i].state != BW_IXF_DAMAGED)
			sup[nsup++] = m->scan.files[i].id;
	if ((rc = bw_repo_write_index(p->r, sup, nsup, keep, nkeep, &id)))
		goto out;
	for (size_t i = 0; i < nsup; i++) {
		if (!memcmp(sup[i].b, id.b, BW_ID_LEN))
			continue; /* same content as an old file: keep it */
		bw_id_hex(&sup[i], name);
		rc = bw_be_remove(p->r->be, BW_OBJ_INDEX, name);
		if (rc == BW_ENOENT)
			rc = 0;
		if (rc)
			goto out;
		bw_err_clear();
	}
out:
	free(keep);
	free(sup);
	return rc;
}

/* Steps 3 and 4. */
static int delete_planned(struct pr *p, const struct plans *pl, const struct bw_id *del,
                          size_t ndel, const struct bw_id *kept, size_t nkept)
{
	char name[2 * BW_ID_LEN + 1];
	int rc;
	for (size_t i = 0; i < ndel; i++) {
		if (id_in(kept, nkept, &del[i]))
			continue;
		uint64_t sz = pack_size(p, &del[i]);
		bw_id_hex(&del[i], name);
		rc = bw_be_remove(p->r->be, BW_OBJ_PACK, name);
		if (rc == BW_ENOENT) {
			bw_err_clear();
			continue;
		}
		if (rc)
			return rc;
		p->st->packs_deleted++;
		p->st->bytes_freed += sz;
		if (p->o.progress) {
			struct bw_progress pg;
			memset(&pg, 0, sizeof pg);
			pg.files_done = p->st->packs_deleted;
			pg.files_total = ndel;
			p->o.progress(&pg, p->o.progress_arg);
		}
	}
	for (size_t i = 0; i < pl->n; i++) {
		if (!pl->v[i].ready)
			continue;
		rc = bw_be_remove(p->r->be, BW_OBJ_PLAN, pl->v[i].name);
		if (rc && rc != BW_ENOENT)
			return rc;
		bw_err_clear();
		p->st->plans_completed++;
	}
	return 0;
}

static int complete(struct pr *p, struct plans *pl)
{
	struct marks m;
	struct bw_id *del = NULL, *kept = NULL;
	size_t ndel = 0, nkept = 0, ndeleting = 0;
	uint8_t *deleting = NULL;
	int rc;
	if ((rc = plan_union(pl, 1, &del, &ndel)))
		return rc;
	if ((rc = mark(p, &m))) {
		free(del);
		return rc;
	}
	/* packs written since the start (repacked ones, new backups) */
	free(p->pf);
	p->pf = NULL;
	p->npf = 0;
	if ((rc = bw_maint_list_packs(p->r, &p->pf, &p->npf)))
		goto out;
	deleting = calloc(m.scan.npacks ? m.scan.npacks : 1, 1);
	kept = malloc((m.scan.npacks + 1) * sizeof *kept);
	if (!deleting || !kept) {
		rc = BW_ENOMEM;
		goto out;
	}
	if ((rc = rescue(p, &m, del, ndel, deleting)))
		goto out;
	for (size_t i = 0; i < m.scan.npacks; i++) {
		if (deleting[i])
			ndeleting++;
		else if (id_in(del, ndel, &m.scan.packs[i].id))
			kept[nkept++] = m.scan.packs[i].id;
	}
	if (nkept)
		qsort(kept, nkept, sizeof *kept, id_cmp);
	if (p->o.dry_run) {
		for (size_t i = 0; i < ndel; i++) {
			uint64_t sz = pack_size(p, &del[i]);
			if (!id_in(kept, nkept, &del[i]) && sz) {
				p->st->packs_deleted++;
				p->st->bytes_freed += sz;
			}
		}
		goto out;
	}
	if (p->sess && (rc = bw_session_refresh(p->sess)))
		goto out;
	if (ndeleting && (rc = rewrite_index(p, &m, deleting)))
		goto out;
	rc = delete_planned(p, pl, del, ndel, kept, nkept);
out:
	free(del);
	free(kept);
	free(deleting);
	marks_release(&m);
	return rc;
}

static int phase2(struct pr *p, struct plans *pl)
{
	int rc, any = 0;
	if (!pl->n)
		return 0;
	if ((rc = plans_readiness(p, pl)))
		return rc;
	for (size_t i = 0; i < pl->n; i++) {
		if (pl->v[i].ready) {
			any = 1;
			continue;
		}
		p->st->plans_waiting++;
		for (size_t j = 0; j < pl->v[i].n; j++) {
			uint64_t sz = pack_size(p, &pl->v[i].packs[j]);
			if (sz) {
				p->st->packs_planned++;
				p->st->bytes_pending += sz;
			}
		}
	}
	return any ? complete(p, pl) : 0;
}

int bw_prune(struct bw_repo *r, const struct bw_prune_opts *o,
             struct bw_prune_stats *st)
{
	struct bw_prune_stats dst;
	struct plans pl;
	struct pr p;
	int rc;
	if (!st)
		st = &dst;
	memset(st, 0, sizeof *st);
	memset(&p, 0, sizeof p);
	memset(&pl, 0, sizeof pl);
	p.r = r;
	p.st = st;
	if (o)
		p.o = *o;
	else
		p.o.max_unused = 0.5;
	if (p.o.stale_after_ns <= 0)
		p.o.stale_after_ns = STALE_DEFAULT_NS;
	if (!(p.o.max_unused >= 0.0)) /* also NaN */
		p.o.max_unused = 0.5;
	if (r->be->append_only && !p.o.dry_run)
		return bw_errf(BW_EPERM, "the repository is append-only: nothing can be "
		               "deleted (run prune where deletes are allowed)");
	if (gethostname(p.host, sizeof p.host))
		snprintf(p.host, sizeof p.host, "unknown");
	p.host[sizeof p.host - 1] = 0;
	pl.r = r;
	pl.dry_run = p.o.dry_run;
	if (!p.o.dry_run && (rc = bw_session_begin(r, "prune", &p.sess)))
		goto out;
	if ((rc = bw_be_list(r->be, BW_OBJ_PLAN, plan_load, &pl)))
		goto out;
	if ((rc = bw_maint_list_packs(r, &p.pf, &p.npf)))
		goto out;
	st->packs_total = p.npf;
	if ((rc = phase1(&p, &pl)))
		goto out;
	uint64_t planned_now = st->packs_planned;
	st->packs_planned = 0;
	if (p.sess && (rc = bw_session_refresh(p.sess)))
		goto out;
	rc = phase2(&p, &pl);
	if (p.o.dry_run)
		st->packs_planned += planned_now;
out:
	bw_session_end(p.sess);
	plans_free(&pl);
	free(p.pf);
	return rc;
}
