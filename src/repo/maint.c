/* Index scans, snapshot loading, pack listing and the tree walk shared by
 * check and prune (see maint.h). */
#include "maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_ATTEMPTS 5
#define RAW_BLOB_MAX ((size_t)BW_CHUNK_MAX_LIMIT + BW_TREE_MAX_BYTES + 4096)

static const char *damage_words(int rc)
{
	switch (rc) {
	case BW_EAUTH: return "damaged (content does not match its name or fails authentication)";
	case BW_EFORMAT: return "malformed or truncated";
	case BW_EVERSION: return "written by an unsupported version";
	case BW_ENOENT: return "missing";
	}
	return bw_strerror(rc);
}

/* ---- ID sets ---- */

struct bw_index *bw_idset_new(void)
{
	struct bw_index *x = bw_index_new();
	struct bw_id zero;
	uint32_t no;
	memset(&zero, 0, sizeof zero);
	if (x && bw_index_add_pack(x, &zero, &no)) {
		bw_index_free(x);
		return NULL;
	}
	return x;
}

int bw_idset_add(struct bw_index *set, const struct bw_id *id)
{
	struct bw_index_entry e;
	memset(&e, 0, sizeof e);
	e.id = *id;
	int r = bw_index_insert(set, &e);
	return r < 0 ? r : r == 1 ? 0 : 1;
}

int bw_idset_has(struct bw_index *set, const struct bw_id *id)
{
	struct bw_index_entry e;
	return bw_index_lookup(set, id, &e) == 0;
}

/* ---- index scan ---- */

struct names {
	char (*v)[2 * BW_ID_LEN + 1];
	size_t n, cap;
};

static int names_add(void *arg, const char *name, uint64_t size)
{
	struct names *l = arg;
	(void)size;
	if (strlen(name) != 2 * BW_ID_LEN)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		void *v = realloc(l->v, nc * sizeof *l->v);
		if (!v)
			return BW_ENOMEM;
		l->v = v;
		l->cap = nc;
	}
	snprintf(l->v[l->n++], sizeof *l->v, "%s", name);
	return 0;
}

struct scan_ctx {
	struct bw_ixscan *s;
	struct bw_id *sup;
	size_t nsup, capsup;
	size_t cur;
	int skip;
};

static int sc_super(void *arg, const struct bw_id *id)
{
	struct scan_ctx *c = arg;
	return bw_ids_push(&c->sup, &c->nsup, &c->capsup, id);
}

static int sc_pack(void *arg, const struct bw_id *pack)
{
	struct scan_ctx *c = arg;
	struct bw_ixscan *s = c->s;
	uint32_t no;
	int r = bw_index_add_pack(s->x, pack, &no);
	if (r)
		return r;
	c->skip = no < s->npacks; /* named again by a later file: keep the first */
	if (c->skip)
		return 0;
	if (s->npacks == s->cappacks) {
		size_t nc = s->cappacks ? s->cappacks * 2 : 64;
		void *v = realloc(s->packs, nc * sizeof *s->packs);
		if (!v)
			return BW_ENOMEM;
		s->packs = v;
		s->cappacks = nc;
	}
	memset(&s->packs[s->npacks], 0, sizeof s->packs[s->npacks]);
	s->packs[s->npacks].id = *pack;
	c->cur = s->npacks++;
	return 0;
}

static int sc_blob(void *arg, const struct bw_pack_blob *b)
{
	struct scan_ctx *c = arg;
	if (c->skip)
		return 0;
	struct bw_ixpack *p = &c->s->packs[c->cur];
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		void *v = realloc(p->blobs, nc * sizeof *p->blobs);
		if (!v)
			return BW_ENOMEM;
		p->blobs = v;
		p->cap = nc;
	}
	p->blobs[p->n++] = *b;
	struct bw_index_entry e;
	memset(&e, 0, sizeof e);
	e.id = b->id;
	e.pack = (uint32_t)c->cur;
	e.offset = b->offset;
	e.length = b->length;
	e.raw_length = b->raw_length;
	e.type = b->type;
	e.grouped = b->grouped;
	int r = bw_index_insert(c->s->x, &e);
	return r < 0 ? r : 0;
}

void bw_ixscan_release(struct bw_ixscan *s)
{
	for (size_t i = 0; i < s->npacks; i++)
		free(s->packs[i].blobs);
	free(s->packs);
	free(s->files);
	bw_index_free(s->x);
	memset(s, 0, sizeof *s);
}

/* Pass 1: read, decrypt and validate each file, collecting supersedes. */
static int scan_read(struct bw_repo *r, struct names *nm, struct bw_ixscan *s,
                     struct bw_buf *bufs, struct scan_ctx *c, int *vanished,
                     bw_maint_report_fn report, void *arg)
{
	struct bw_index_file_cb cb1 = {sc_super, NULL, NULL, c};
	for (size_t i = 0; i < nm->n; i++) {
		int rc;
		if (bw_id_parse(nm->v[i], &s->files[i].id)) {
			s->files[i].state = BW_IXF_DAMAGED;
			continue;
		}
		rc = bw_repo_load_obj(r, BW_OBJ_INDEX, nm->v[i], &bufs[i]);
		if (rc == BW_ENOENT) {
			bw_err_clear();
			*vanished = 1;
			return 0;
		}
		size_t before = c->nsup;
		if (!rc)
			rc = bw_index_file_decode(bufs[i].data, bufs[i].len, &cb1);
		if (rc == BW_ENOMEM)
			return rc;
		if (rc) {
			char what[80];
			c->nsup = before;
			snprintf(what, sizeof what, "index %s", nm->v[i]);
			if (report)
				report(arg, what, damage_words(rc));
			bw_err_clear();
			s->files[i].state = BW_IXF_DAMAGED;
			bw_buf_release(&bufs[i]);
		}
	}
	return 0;
}

static int scan_once(struct bw_repo *r, struct bw_ixscan *s, int *vanished,
                     bw_maint_report_fn report, void *arg)
{
	struct names nm = {NULL, 0, 0};
	struct bw_buf *bufs = NULL;
	struct scan_ctx c;
	int rc;
	memset(&c, 0, sizeof c);
	c.s = s;
	*vanished = 0;
	if (!(s->x = bw_index_new()))
		return BW_ENOMEM;
	if ((rc = bw_be_list(r->be, BW_OBJ_INDEX, names_add, &nm)))
		goto out;
	s->files = calloc(nm.n ? nm.n : 1, sizeof *s->files);
	bufs = calloc(nm.n ? nm.n : 1, sizeof *bufs);
	if (!s->files || !bufs) {
		rc = BW_ENOMEM;
		goto out;
	}
	s->nfiles = nm.n;
	for (size_t i = 0; i < nm.n; i++)
		bw_buf_init(&bufs[i], BW_OBJ_MAX);
	if ((rc = scan_read(r, &nm, s, bufs, &c, vanished, report, arg)) || *vanished)
		goto out;
	for (size_t i = 0; i < nm.n; i++) {
		if (s->files[i].state != BW_IXF_OK)
			continue;
		for (size_t k = 0; k < c.nsup; k++)
			if (!memcmp(c.sup[k].b, s->files[i].id.b, BW_ID_LEN))
				s->files[i].state = BW_IXF_SUPERSEDED;
	}
	struct bw_index_file_cb cb2 = {NULL, sc_pack, sc_blob, &c};
	for (size_t i = 0; i < nm.n; i++) {
		if (s->files[i].state != BW_IXF_OK)
			continue;
		if ((rc = bw_index_file_decode(bufs[i].data, bufs[i].len, &cb2)))
			goto out;
		bw_buf_release(&bufs[i]);
	}
out:
	for (size_t i = 0; bufs && i < nm.n; i++)
		bw_buf_release(&bufs[i]);
	free(bufs);
	free(nm.v);
	free(c.sup);
	return rc;
}

int bw_ixscan_load(struct bw_repo *r, struct bw_ixscan *s,
                   bw_maint_report_fn report, void *arg)
{
	int rc = 0, vanished = 1;
	memset(s, 0, sizeof *s);
	for (int attempt = 0; attempt < SCAN_ATTEMPTS && vanished; attempt++) {
		bw_ixscan_release(s);
		rc = scan_once(r, s, &vanished, report, arg);
		if (rc)
			break;
	}
	if (!rc && vanished)
		rc = bw_errf(BW_EBUSY, "index files keep changing (another prune is "
		             "running?); try again later");
	if (rc)
		bw_ixscan_release(s);
	return rc;
}

/* ---- snapshots ---- */

struct snaps {
	struct bw_repo *r;
	struct bw_snapshot *v;
	size_t n, cap, damaged;
	bw_maint_report_fn report;
	void *arg;
};

static int snap_one(void *arg, const char *name, uint64_t size)
{
	struct snaps *l = arg;
	struct bw_buf b;
	struct bw_snapshot s;
	(void)size;
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_repo_load_obj(l->r, BW_OBJ_SNAPSHOT, name, &b);
	if (!rc)
		rc = bw_snapshot_from_json(b.data, b.len, &s);
	bw_buf_release(&b);
	if (rc == BW_ENOENT) { /* forgotten meanwhile */
		bw_err_clear();
		return 0;
	}
	if (!rc && bw_id_parse(name, &s.id)) {
		bw_snapshot_release(&s);
		rc = BW_EFORMAT;
	}
	if (rc == BW_ENOMEM)
		return rc;
	if (rc) {
		char what[80];
		snprintf(what, sizeof what, "snapshot %s", name);
		if (l->report)
			l->report(l->arg, what, damage_words(rc));
		bw_err_clear();
		l->damaged++;
		return 0;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, nc * sizeof *l->v);
		if (!v) {
			bw_snapshot_release(&s);
			return BW_ENOMEM;
		}
		l->v = v;
		l->cap = nc;
	}
	l->v[l->n++] = s;
	return 0;
}

static int snap_cmp(const void *a, const void *b)
{
	const struct bw_snapshot *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return memcmp(x->id.b, y->id.b, BW_ID_LEN);
}

int bw_maint_snapshots(struct bw_repo *r, struct bw_snapshot **out,
                       size_t *n, size_t *ndamaged,
                       bw_maint_report_fn report, void *arg)
{
	struct snaps l = {r, NULL, 0, 0, 0, report, arg};
	int rc = bw_be_list(r->be, BW_OBJ_SNAPSHOT, snap_one, &l);
	if (rc) {
		bw_snapshots_free(l.v, l.n);
		return rc;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, snap_cmp);
	*out = l.v;
	*n = l.n;
	*ndamaged = l.damaged;
	return 0;
}

/* ---- packs on the backend ---- */

struct plist {
	struct bw_packfile *v;
	size_t n, cap;
};

static int pack_one(void *arg, const char *name, uint64_t size)
{
	struct plist *l = arg;
	struct bw_id id;
	if (bw_id_parse(name, &id))
		return 0; /* not a pack name: ignore */
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		void *v = realloc(l->v, nc * sizeof *l->v);
		if (!v)
			return BW_ENOMEM;
		l->v = v;
		l->cap = nc;
	}
	l->v[l->n].id = id;
	l->v[l->n].size = size;
	l->n++;
	return 0;
}

static int packfile_cmp(const void *a, const void *b)
{
	return memcmp(((const struct bw_packfile *)a)->id.b,
	              ((const struct bw_packfile *)b)->id.b, BW_ID_LEN);
}

int bw_maint_list_packs(struct bw_repo *r, struct bw_packfile **out, size_t *n)
{
	struct plist l = {NULL, 0, 0};
	int rc = bw_be_list(r->be, BW_OBJ_PACK, pack_one, &l);
	if (rc) {
		free(l.v);
		return rc;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, packfile_cmp);
	*out = l.v;
	*n = l.n;
	return 0;
}

ssize_t bw_maint_find_pack(const struct bw_packfile *v, size_t n,
                           const struct bw_id *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(v[mid].id.b, id->b, BW_ID_LEN);
		if (!c)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- blobs through a scan ---- */

int bw_maint_load_blob(struct bw_repo *r, struct bw_ixscan *s,
                       struct bw_blob_ctx *c, const struct bw_id *id,
                       struct bw_buf *out)
{
	struct bw_index_entry e;
	struct bw_buf raw;
	char name[2 * BW_ID_LEN + 1];
	int rc;
	if (bw_index_lookup(s->x, id, &e) || e.pack >= s->npacks)
		return BW_ENOENT;
	bw_id_hex(&s->packs[e.pack].id, name);
	bw_buf_init(&raw, RAW_BLOB_MAX);
	rc = bw_be_read(r->be, BW_OBJ_PACK, name, e.offset, e.length, &raw);
	if (!rc)
		rc = bw_blob_decode(c, r->keys, id, e.grouped, raw.data, raw.len,
		                    e.raw_length, out);
	bw_buf_release(&raw);
	return rc;
}

/* ---- the tree walk ---- */

struct wjob {
	struct bw_id id;
	struct bw_id from; /* snapshot or parent tree */
	int from_snapshot;
};

struct wstack {
	struct wjob *v;
	size_t n, cap;
};

static int push(struct wstack *st, const struct bw_id *id,
                const struct bw_id *from, int from_snapshot)
{
	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 256;
		void *v = realloc(st->v, nc * sizeof *st->v);
		if (!v)
			return BW_ENOMEM;
		st->v = v;
		st->cap = nc;
	}
	st->v[st->n].id = *id;
	st->v[st->n].from = *from;
	st->v[st->n].from_snapshot = from_snapshot;
	st->n++;
	return 0;
}

static void problem(struct bw_maint_walk *w, const char *kind,
                    const struct bw_id *obj, const char *fmt, ...)
	BW_PRINTF(4, 5);
static void problem(struct bw_maint_walk *w, const char *kind,
                    const struct bw_id *obj, const char *fmt, ...)
{
	char what[96], hex[2 * BW_ID_LEN + 1], msg[512];
	va_list ap;
	w->problems++;
	if (!w->report)
		return;
	bw_id_hex(obj, hex);
	snprintf(what, sizeof what, "%s %s", kind, hex);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	w->report(w->arg, what, msg);
}

/* 0 usable, BW_ENOENT not indexed, BW_EIO in a bad pack */
static int locate(struct bw_maint_walk *w, const struct bw_id *id,
                  struct bw_index_entry *e)
{
	if (bw_index_lookup(w->scan->x, id, e))
		return BW_ENOENT;
	if (w->bad_pack && w->bad_pack[e->pack])
		return BW_EIO;
	return 0;
}

static int check_content(struct bw_maint_walk *w, const struct bw_id *tree,
                         const struct bw_node *nd)
{
	struct bw_index_entry e;
	for (size_t k = 0; k < nd->ncontent; k++) {
		int r = bw_idset_add(w->data, &nd->content[k]);
		if (r <= 0) {
			if (r < 0)
				return r;
			continue;
		}
		r = locate(w, &nd->content[k], &e);
		if (r == BW_ENOENT) {
			char hex[2 * BW_ID_LEN + 1];
			bw_id_hex(&nd->content[k], hex);
			problem(w, "tree", tree, "file '%.*s': data blob %s missing (not in the index)",
			        (int)nd->name_len, nd->name, hex);
		} else if (r == BW_EIO) {
			w->problems++; /* its pack was reported */
		}
	}
	return 0;
}

static int walk_one(struct bw_maint_walk *w, struct bw_blob_ctx *bc,
                    struct wstack *st, const struct wjob *j)
{
	struct bw_index_entry e;
	struct bw_tree t;
	struct bw_buf b;
	char hex[2 * BW_ID_LEN + 1];
	int rc = bw_idset_add(w->trees, &j->id);
	if (rc <= 0)
		return rc;
	bw_id_hex(&j->id, hex);
	rc = locate(w, &j->id, &e);
	if (rc) {
		if (rc == BW_EIO)
			problem(w, j->from_snapshot ? "snapshot" : "tree", &j->from,
			        "tree %s unreadable (its pack is missing or damaged)", hex);
		else
			problem(w, j->from_snapshot ? "snapshot" : "tree", &j->from,
			        "tree %s missing (not in the index)", hex);
		return 0;
	}
	bw_buf_init(&b, BW_TREE_MAX_BYTES);
	rc = bw_maint_load_blob(w->r, w->scan, bc, &j->id, &b);
	if (!rc)
		rc = bw_tree_decode(&b, &t);
	bw_buf_release(&b);
	if (rc == BW_ENOMEM)
		return rc;
	if (rc) {
		problem(w, "tree", &j->id, "cannot be read: %s", damage_words(rc));
		bw_err_clear();
		return 0;
	}
	w->trees_done++;
	for (size_t i = 0; i < t.n && !rc; i++) {
		const struct bw_node *nd = &t.nodes[i];
		if (nd->type == BW_NODE_DIR)
			rc = push(st, &nd->subtree, &j->id, 0);
		else if (nd->type == BW_NODE_FILE)
			rc = check_content(w, &j->id, nd);
	}
	bw_tree_release(&t);
	return rc;
}

int bw_maint_walk(struct bw_maint_walk *w, const struct bw_snapshot *snaps,
                  size_t n)
{
	struct wstack st = {NULL, 0, 0};
	struct bw_blob_ctx *bc = bw_blob_ctx_new(0);
	int rc = 0;
	if (!bc)
		return BW_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		if ((rc = push(&st, &snaps[i].tree, &snaps[i].id, 1)))
			break;
		while (st.n && !rc) {
			struct wjob j = st.v[--st.n];
			rc = walk_one(w, bc, &st, &j);
			if (w->progress && (w->trees_done & 255) == 0) {
				struct bw_progress p;
				memset(&p, 0, sizeof p);
				p.files_done = w->trees_done;
				w->progress(&p, w->progress_arg);
			}
		}
	}
	free(st.v);
	bw_blob_ctx_free(bc);
	return rc;
}
