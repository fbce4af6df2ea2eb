/* Opening and creating repositories; whole objects; blobs; the index;
 * snapshots. */
#include "repo_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "chunker.h"
#include "maint.h"

static struct bw_repo *repo_alloc(void)
{
	struct bw_repo *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->keys = bw_keys_new();
	if (!r->keys) {
		free(r);
		return NULL;
	}
	return r;
}

void bw_repo_close(struct bw_repo *r)
{
	if (!r)
		return;
	bw_index_free(r->index);
	bw_blob_ctx_free(r->blob_ctx);
	bw_keys_free(r->keys);
	bw_be_free(r->be);
	free(r->cache_dir);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void setup_cache(struct bw_repo *r)
{
	const char *base = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char p[4096], id[2 * BW_ID_LEN + 1];
	bw_id_hex(&r->id, id);
	if (base && *base)
		snprintf(p, sizeof p, "%s/bulwark/%s", base, id);
	else if (home && *home)
		snprintf(p, sizeof p, "%s/.cache/bulwark/%s", home, id);
	else
		return;
	if (bw_mkdir_p(p, 0700))
		return;
	r->cache_dir = strdup(p);
}

/* What the config says, for an opened or new repository. */
static void repo_take_config(struct bw_repo *r, const struct bw_config *c)
{
	r->id = c->id;
	r->chunker = c->chunker;
	r->compression = c->compression;
	r->version = c->version;
	r->hash = c->version >= 3 ? BW_HASH_BLAKE3 : BW_HASH_SHA256;
	setup_cache(r);
}

int bw_repo_init(const char *location, const char *pass, size_t passlen,
                 const struct bw_init_opts *o, struct bw_repo **out)
{
	struct bw_init_opts def = {{0, 0, 0}, 0, 0, 0, 0};
	struct bw_config c;
	struct bw_buf cfg, key;
	struct bw_id mac;
	int r;
	if (!o)
		o = &def;
	bw_buf_init(&cfg, BW_CONFIG_MAX);
	bw_buf_init(&key, BW_KEYFILE_MAX);
	memset(&c, 0, sizeof c);
	c.version = o->version ? o->version : BW_REPO_VERSION;
	if (c.version < 1 || c.version > BW_REPO_VERSION)
		return bw_errf(BW_EINVAL, "format version %d: this bulwark writes versions 1 to %d",
		               c.version, BW_REPO_VERSION);
	c.chunker = o->chunker;
	if (!c.chunker.min && !c.chunker.avg && !c.chunker.max) {
		c.chunker.min = BW_CHUNK_MIN_DEFAULT;
		c.chunker.avg = BW_CHUNK_AVG_DEFAULT;
		c.chunker.max = BW_CHUNK_MAX_DEFAULT;
	}
	if ((r = bw_chunker_params_check(&c.chunker)))
		return r;
	c.compression = o->compression < 0 ? 0 : o->compression ? o->compression : 3;
	if (c.compression > ZSTD_maxCLevel())
		return bw_errf(BW_EINVAL, "compression level %d: at most %d",
		               c.compression, ZSTD_maxCLevel());
	c.created_ns = bw_now_ns();
	struct bw_repo *rp = repo_alloc();
	if (!rp)
		return BW_ENOMEM;
	bw_random(c.id.b, BW_ID_LEN);
	bw_keys_random(rp->keys);
	if ((r = bw_config_encode(&c, &cfg)))
		goto out;
	if ((r = bw_backend_local_open(location, 1, &rp->be)))
		goto out;
	bw_mac_id(rp->keys, cfg.data, cfg.len, &mac);
	if ((r = bw_key_make(rp->keys, &mac, pass, passlen,
	                     o->kdf_ops ? o->kdf_ops : BW_KDF_OPS_DEFAULT,
	                     o->kdf_mem ? o->kdf_mem : BW_KDF_MEM_DEFAULT, &key)))
		goto out;
	/* key first: a config without a key is useless but harmless, and the
	 * config's presence is what makes a directory a repository */
	struct bw_id kid;
	bw_sha256(key.data, key.len, &kid);
	bw_id_hex(&kid, rp->key_name);
	if ((r = bw_be_write(rp->be, BW_OBJ_KEY, rp->key_name, key.data, key.len)))
		goto out;
	if ((r = bw_be_write(rp->be, BW_OBJ_CONFIG, "config", cfg.data, cfg.len)))
		goto out;
	repo_take_config(rp, &c);
	*out = rp;
	rp = NULL;
out:
	bw_repo_close(rp);
	bw_buf_release(&cfg);
	bw_buf_release(&key);
	return r;
}

struct try_ctx {
	struct bw_repo *r;
	const char *pass;
	size_t passlen;
	struct bw_id mac;
	int found, tried, last_err;
};

static int try_key(void *arg, const char *name, uint64_t size)
{
	struct try_ctx *t = arg;
	struct bw_buf b;
	if (size > BW_KEYFILE_MAX)
		return 0;
	bw_buf_init(&b, BW_KEYFILE_MAX);
	int r = bw_be_read(t->r->be, BW_OBJ_KEY, name, 0, 0, &b);
	if (!r)
		r = bw_key_try(b.data, b.len, t->pass, t->passlen, t->r->keys, &t->mac);
	bw_buf_release(&b);
	t->tried++;
	if (!r) {
		snprintf(t->r->key_name, sizeof t->r->key_name, "%s", name);
		t->found = 1;
		return 1; /* stop */
	}
	if (r != BW_EPASS) {
		bw_warn("key %.8s: %s", name, *bw_err_msg() ? bw_err_msg() : bw_strerror(r));
		t->last_err = r;
	}
	bw_err_clear();
	return 0;
}

int bw_repo_open(const char *location, const char *pass, size_t passlen,
                 struct bw_repo **out)
{
	struct bw_buf cfg;
	struct bw_config c;
	struct bw_id mac;
	int r;
	struct bw_repo *rp = repo_alloc();
	if (!rp)
		return BW_ENOMEM;
	bw_buf_init(&cfg, BW_CONFIG_MAX);
	if ((r = bw_backend_local_open(location, 0, &rp->be)))
		goto out;
	if ((r = bw_be_read(rp->be, BW_OBJ_CONFIG, "config", 0, 0, &cfg)))
		goto out;
	if ((r = bw_config_decode(cfg.data, cfg.len, &c)))
		goto out;
	if ((r = bw_chunker_params_check(&c.chunker)))
		goto out;
	struct try_ctx t = {rp, pass, passlen, {{0}}, 0, 0, 0};
	r = bw_be_list(rp->be, BW_OBJ_KEY, try_key, &t);
	if (r < 0)
		goto out;
	if (!t.found) {
		r = t.tried ? bw_errf(BW_EPASS, "%s: wrong passphrase (tried %d key%s)",
		                      location, t.tried, t.tried == 1 ? "" : "s")
		            : bw_errf(BW_ENOENT, "%s: repository has no keys", location);
		goto out;
	}
	bw_mac_id(rp->keys, cfg.data, cfg.len, &mac);
	if (bw_ct_cmp(mac.b, t.mac.b, BW_ID_LEN)) {
		r = bw_errf(BW_EAUTH, "%s: config does not match the repository's keys (altered?)", location);
		goto out;
	}
	repo_take_config(rp, &c);
	*out = rp;
	rp = NULL;
	r = 0;
out:
	bw_repo_close(rp);
	bw_buf_release(&cfg);
	return r;
}

void bw_repo_set_append_only(struct bw_repo *r, int on) { r->be->append_only = on; }
void bw_repo_id_hex(const struct bw_repo *r, char out[2 * BW_ID_LEN + 1]) { bw_id_hex(&r->id, out); }
void bw_repo_set_compression(struct bw_repo *r, int level) { r->compression = level < 0 ? 0 : level; }
int bw_repo_compression(const struct bw_repo *r) { return r->compression; }
const struct bw_chunker_params *bw_repo_chunker(const struct bw_repo *r) { return &r->chunker; }
const char *bw_repo_cache_dir(const struct bw_repo *r) { return r->cache_dir; }

/* ---- whole objects ---- */

static void obj_ad(enum bw_obj t, char *ad, size_t n)
{
	snprintf(ad, n, "bulwark %s", bw_obj_name(t));
}

int bw_repo_save_obj(struct bw_repo *r, enum bw_obj t, const void *p, size_t n,
                     struct bw_id *id)
{
	struct bw_buf pt, st;
	char ad[32], name[2 * BW_ID_LEN + 1];
	int rc;
	obj_ad(t, ad, sizeof ad);
	bw_buf_init(&pt, BW_OBJ_MAX + 64);
	bw_buf_init(&st, BW_OBJ_MAX + 128);
	size_t bound = ZSTD_compressBound(n);
	if ((rc = bw_buf_reserve(&pt, 1 + bound)))
		goto out;
	size_t z = ZSTD_compress(pt.data + 1, bound, p, n, 3);
	if (!ZSTD_isError(z) && z < n) {
		pt.data[0] = 1;
		pt.len = 1 + z;
	} else {
		pt.data[0] = 0;
		memcpy(pt.data + 1, p, n);
		pt.len = 1 + n;
	}
	if ((rc = bw_buf_reserve(&st, pt.len + BW_SEAL_OVERHEAD)))
		goto out;
	if ((rc = bw_seal(r->keys->enc, ad, strlen(ad), pt.data, pt.len, st.data)))
		goto out;
	st.len = pt.len + BW_SEAL_OVERHEAD;
	bw_hash(r->hash, st.data, st.len, id);
	bw_id_hex(id, name);
	rc = bw_be_write(r->be, t, name, st.data, st.len);
	if (rc == BW_EEXIST)
		rc = 0; /* identical object already stored */
out:
	bw_buf_release(&pt);
	bw_buf_release(&st);
	return rc;
}

int bw_repo_open_obj(struct bw_repo *r, enum bw_obj t, const uint8_t *p,
                     size_t n, struct bw_buf *out)
{
	char ad[32];
	struct bw_buf pt;
	int rc;
	obj_ad(t, ad, sizeof ad);
	if (n < BW_SEAL_OVERHEAD + 1)
		return BW_EFORMAT;
	bw_buf_init(&pt, BW_OBJ_MAX);
	if ((rc = bw_buf_reserve(&pt, n)))
		goto out;
	if ((rc = bw_open(r->keys->enc, ad, strlen(ad), p, n, pt.data)))
		goto out;
	pt.len = n - BW_SEAL_OVERHEAD;
	bw_buf_reset(out);
	if (pt.data[0] == 0) {
		rc = bw_buf_append(out, pt.data + 1, pt.len - 1);
	} else if (pt.data[0] == 1) {
		unsigned long long sz = ZSTD_getFrameContentSize(pt.data + 1, pt.len - 1);
		if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN ||
		    sz > BW_OBJ_MAX) {
			rc = BW_EFORMAT;
			goto out;
		}
		if ((rc = bw_buf_reserve(out, (size_t)sz)))
			goto out;
		size_t d = ZSTD_decompress(out->data, (size_t)sz, pt.data + 1, pt.len - 1);
		if (ZSTD_isError(d) || d != sz) {
			rc = BW_EFORMAT;
			goto out;
		}
		out->len = d;
	} else {
		rc = BW_EFORMAT;
	}
out:
	bw_buf_release(&pt);
	return rc;
}

int bw_repo_load_obj(struct bw_repo *r, enum bw_obj t, const char *name,
                     struct bw_buf *out)
{
	struct bw_buf st;
	struct bw_id h, want;
	int rc;
	bw_buf_init(&st, BW_OBJ_MAX + 128);
	if ((rc = bw_be_read(r->be, t, name, 0, 0, &st)))
		goto out;
	bw_hash(r->hash, st.data, st.len, &h);
	if (bw_id_parse(name, &want) || memcmp(h.b, want.b, BW_ID_LEN)) {
		rc = bw_errf(BW_EAUTH, "%s %s: content does not match its name (damaged)",
		             bw_obj_name(t), name);
		goto out;
	}
	rc = bw_repo_open_obj(r, t, st.data, st.len, out);
	if (rc)
		rc = bw_errf(rc, "%s %s: cannot be decrypted or decoded: %s",
		             bw_obj_name(t), name, bw_strerror(rc));
out:
	bw_buf_release(&st);
	return rc;
}

/* ---- blobs ---- */

int bw_repo_read_blob_raw(struct bw_repo *r, const struct bw_index_entry *e,
                          struct bw_buf *out)
{
	char name[2 * BW_ID_LEN + 1];
	const struct bw_id *pid = bw_index_pack_id(r->index, e->pack);
	if (!pid)
		return BW_ENOENT;
	bw_id_hex(pid, name);
	bw_buf_reset(out);
	return bw_be_read(r->be, BW_OBJ_PACK, name, e->offset, e->length, out);
}

int bw_repo_load_blob_ctx(struct bw_repo *r, struct bw_blob_ctx *c,
                          const struct bw_id *id, struct bw_buf *out)
{
	struct bw_index_entry e;
	struct bw_buf raw;
	char hex[2 * BW_ID_LEN + 1];
	int rc;
	if (!r->index && (rc = bw_repo_load_index(r)))
		return rc;
	if (bw_index_lookup(r->index, id, &e)) {
		bw_id_hex(id, hex);
		return bw_errf(BW_ENOENT, "blob %s: not in the index", hex);
	}
	bw_buf_init(&raw, (size_t)BW_CHUNK_MAX_LIMIT + BW_TREE_MAX_BYTES);
	rc = bw_repo_read_blob_raw(r, &e, &raw);
	if (!rc) {
		rc = bw_blob_decode(c, r->keys, id, e.grouped, raw.data, raw.len,
		                    e.raw_length, out);
		if (rc) {
			char pk[2 * BW_ID_LEN + 1];
			bw_id_hex(id, hex);
			bw_id_hex(bw_index_pack_id(r->index, e.pack), pk);
			rc = bw_errf(rc, "blob %.16s in pack %.16s: %s", hex, pk,
			             rc == BW_EAUTH ? "damaged (authentication failed)"
			                            : bw_strerror(rc));
		}
	}
	bw_buf_release(&raw);
	return rc;
}

/* The repository's own codec context, for callers without one; taken
 * with r->lock held and given back with shared_ctx_put. */
static struct bw_blob_ctx *shared_ctx_get(struct bw_repo *r)
{
	pthread_mutex_lock(&r->lock);
	if (!r->blob_ctx)
		r->blob_ctx = bw_blob_ctx_new(r->compression);
	if (!r->blob_ctx)
		pthread_mutex_unlock(&r->lock);
	return r->blob_ctx;
}

static void shared_ctx_put(struct bw_repo *r)
{
	pthread_mutex_unlock(&r->lock);
}

int bw_repo_load_blob(struct bw_repo *r, const struct bw_id *id,
                      struct bw_buf *out)
{
	struct bw_blob_ctx *c = shared_ctx_get(r);
	if (!c)
		return BW_ENOMEM;
	int rc = bw_repo_load_blob_ctx(r, c, id, out);
	shared_ctx_put(r);
	return rc;
}

int bw_repo_has_blob(struct bw_repo *r, const struct bw_id *id)
{
	struct bw_index_entry e;
	if (!r->index && bw_repo_load_index(r))
		return 0;
	return bw_index_lookup(r->index, id, &e) == 0;
}

int bw_repo_load_tree_ctx(struct bw_repo *r, struct bw_blob_ctx *c,
                          const struct bw_id *id, struct bw_tree *out)
{
	struct bw_buf b;
	bw_buf_init(&b, BW_TREE_MAX_BYTES);
	int rc = bw_repo_load_blob_ctx(r, c, id, &b);
	if (!rc) {
		rc = bw_tree_decode(&b, out);
		if (rc) {
			char hex[2 * BW_ID_LEN + 1];
			bw_id_hex(id, hex);
			rc = bw_errf(rc, "tree %.16s: malformed", hex);
		}
	}
	bw_buf_release(&b);
	return rc;
}

int bw_repo_load_tree(struct bw_repo *r, const struct bw_id *id,
                      struct bw_tree *out)
{
	struct bw_blob_ctx *c = shared_ctx_get(r);
	if (!c)
		return BW_ENOMEM;
	int rc = bw_repo_load_tree_ctx(r, c, id, out);
	shared_ctx_put(r);
	return rc;
}

/* ---- index ---- */

struct name_list {
	char (*v)[2 * BW_ID_LEN + 1];
	size_t n, cap;
};

static int name_add(void *arg, const char *name, uint64_t size)
{
	struct name_list *l = arg;
	(void)size;
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

struct load_ctx {
	struct bw_index *x;
	uint32_t pack;
	struct bw_id *sup;
	size_t nsup, capsup;
	int collect_super;
};

int bw_ids_push(struct bw_id **v, size_t *n, size_t *cap,
                const struct bw_id *id)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void *nv = realloc(*v, nc * sizeof **v);
		if (!nv)
			return BW_ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *id;
	return 0;
}

static int on_super(void *arg, const struct bw_id *id)
{
	struct load_ctx *c = arg;
	if (!c->collect_super)
		return 0;
	return bw_ids_push(&c->sup, &c->nsup, &c->capsup, id);
}

static int on_pack(void *arg, const struct bw_id *pack)
{
	struct load_ctx *c = arg;
	if (c->collect_super)
		return 0;
	return bw_index_add_pack(c->x, pack, &c->pack);
}

static int on_blob(void *arg, const struct bw_pack_blob *b)
{
	struct load_ctx *c = arg;
	if (c->collect_super)
		return 0;
	struct bw_index_entry e;
	memset(&e, 0, sizeof e);
	e.id = b->id;
	e.pack = c->pack;
	e.offset = b->offset;
	e.length = b->length;
	e.raw_length = b->raw_length;
	e.type = b->type;
	e.grouped = b->grouped;
	int rc = bw_index_insert(c->x, &e);
	return rc < 0 ? rc : 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Decode the index files in names (entries with name[0] == 0 are skipped)
 * into c->x, leaving out superseded ones; damaged files are warned about
 * and marked skipped.  Sets *sup_hit if a file supersedes one in
 * covered. */
static int load_files(struct bw_repo *r, struct name_list *names,
                      struct load_ctx *c, const struct bw_id *covered,
                      size_t ncovered, int *sup_hit)
{
	struct bw_buf b;
	int rc = 0;
	struct bw_index_file_cb cb = {on_super, on_pack, on_blob, c};
	bw_buf_init(&b, BW_OBJ_MAX);
	/* pass 1: which index files were superseded by a prune */
	c->collect_super = 1;
	c->nsup = 0;
	for (size_t i = 0; i < names->n; i++) {
		if (!names->v[i][0])
			continue;
		if ((rc = bw_repo_load_obj(r, BW_OBJ_INDEX, names->v[i], &b)) ||
		    (rc = bw_index_file_decode(b.data, b.len, &cb))) {
			bw_warn("index %.16s: %s; its packs will be missing until `check` and `prune` repair it",
			        names->v[i], *bw_err_msg() ? bw_err_msg() : bw_strerror(rc));
			bw_err_clear();
			names->v[i][0] = 0;
		}
	}
	rc = 0;
	*sup_hit = 0;
	for (size_t k = 0; k < c->nsup && !*sup_hit; k++)
		for (size_t j = 0; j < ncovered && !*sup_hit; j++)
			*sup_hit = !memcmp(c->sup[k].b, covered[j].b, BW_ID_LEN);
	if (*sup_hit)
		goto out;
	c->collect_super = 0;
	for (size_t i = 0; i < names->n; i++) {
		struct bw_id id;
		int superseded = 0;
		if (!names->v[i][0] || bw_id_parse(names->v[i], &id))
			continue;
		for (size_t k = 0; k < c->nsup && !superseded; k++)
			superseded = !memcmp(c->sup[k].b, id.b, BW_ID_LEN);
		if (superseded)
			continue;
		if ((rc = bw_repo_load_obj(r, BW_OBJ_INDEX, names->v[i], &b)) ||
		    (rc = bw_index_file_decode(b.data, b.len, &cb))) {
			bw_err_clear();
			names->v[i][0] = 0;
			rc = 0;
		}
	}
out:
	bw_buf_release(&b);
	return rc;
}

/* The index: the local cache (a mapped, sorted table covering a set of
 * index files) plus, in memory, the index files it does not cover.  The
 * cache is rewritten when what lies outside it grows past a tenth of it,
 * or rebuilt from scratch when a prune superseded files it covers. */
int bw_repo_load_index(struct bw_repo *r)
{
	struct name_list names = {NULL, 0, 0}, pending = {NULL, 0, 0};
	struct load_ctx c;
	struct bw_id *covered = NULL;
	size_t ncovered = 0;
	char cpath[4200] = "";
	int rc, sup_hit = 0;
	if (r->index)
		return 0;
	memset(&c, 0, sizeof c);
	if ((rc = bw_be_list(r->be, BW_OBJ_INDEX, name_add, &names)))
		goto out;
	if (names.n)
		qsort(names.v, names.n, sizeof *names.v, name_cmp);
	if (r->cache_dir)
		snprintf(cpath, sizeof cpath, "%s/index", r->cache_dir);
again:
	bw_index_free(c.x);
	if (!(c.x = bw_index_new())) {
		rc = BW_ENOMEM;
		goto out;
	}
	free(covered);
	covered = NULL;
	ncovered = 0;
	if (*cpath && !sup_hit &&
	    bw_index_attach(c.x, cpath, &r->id, &covered, &ncovered) == 0) {
		/* the cache is usable only if every file it covers still exists */
		for (size_t i = 0; i < ncovered; i++) {
			char hex[2 * BW_ID_LEN + 1];
			bw_id_hex(&covered[i], hex);
			if (!bsearch(hex, names.v, names.n, sizeof *names.v, name_cmp)) {
				sup_hit = 1; /* a prune removed it: rebuild */
				goto again;
			}
		}
	}
	bw_err_clear();
	/* the files outside the cache */
	pending.n = 0;
	for (size_t i = 0; i < names.n; i++) {
		struct bw_id id;
		int in = 0;
		if (bw_id_parse(names.v[i], &id))
			continue;
		for (size_t k = 0; k < ncovered && !in; k++)
			in = !memcmp(covered[k].b, id.b, BW_ID_LEN);
		if (!in && (rc = name_add(&pending, names.v[i], 0)))
			goto out;
	}
	if ((rc = load_files(r, &pending, &c, covered, ncovered, &sup_hit)))
		goto out;
	if (sup_hit)
		goto again; /* rebuild without the cache */
	/* nothing was forgotten yet: count = base + in memory */
	size_t base = bw_index_base_count(c.x), mem = bw_index_count(c.x) - base;
	if (*cpath && pending.n && (base == 0 || mem * 10 > base)) {
		/* covered from now on: the old set plus what loaded cleanly */
		struct bw_id *all = realloc(covered, (ncovered + pending.n) * sizeof *all);
		if (!all) {
			rc = BW_ENOMEM;
			goto out;
		}
		covered = all;
		for (size_t i = 0; i < pending.n; i++)
			if (pending.v[i][0] && !bw_id_parse(pending.v[i], &covered[ncovered]))
				ncovered++;
		if (bw_index_write_cache(c.x, cpath, &r->id, covered, ncovered)) {
			bw_warn("cannot write the index cache %s; going on without it", cpath);
		} else {
			/* swap the in-memory table for the mapped cache */
			struct bw_index *nx = bw_index_new();
			struct bw_id *cov2 = NULL;
			size_t n2 = 0;
			if (nx && bw_index_attach(nx, cpath, &r->id, &cov2, &n2) == 0) {
				bw_index_free(c.x);
				c.x = nx;
				nx = NULL;
			}
			bw_index_free(nx);
			free(cov2);
		}
		bw_err_clear();
	}
	r->index = c.x;
	c.x = NULL;
	rc = 0;
out:
	bw_index_free(c.x);
	free(c.sup);
	free(covered);
	free(names.v);
	free(pending.v);
	return rc;
}

int bw_repo_write_index(struct bw_repo *r, const struct bw_id *supersedes,
                        size_t nsup, const struct bw_index_pack *packs,
                        size_t npacks, struct bw_id *id)
{
	struct bw_buf b;
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_index_file_encode(supersedes, nsup, packs, npacks, &b);
	if (!rc)
		rc = bw_repo_save_obj(r, BW_OBJ_INDEX, b.data, b.len, id);
	bw_buf_release(&b);
	return rc;
}

/* ---- snapshots ---- */

static void warn_damaged(void *arg, const char *what, const char *msg)
{
	(void)arg;
	bw_warn("%s: %s (skipped)", what, msg);
}

int bw_repo_snapshots(struct bw_repo *r, struct bw_snapshot **out, size_t *n)
{
	size_t ndamaged;
	return bw_maint_snapshots(r, out, n, &ndamaged, warn_damaged, NULL);
}

void bw_snapshots_free(struct bw_snapshot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bw_snapshot_release(&s[i]);
	free(s);
}

static int has_path(const struct bw_snapshot *s, const char *path)
{
	for (size_t i = 0; i < s->npaths; i++)
		if (!strcmp(s->paths[i], path))
			return 1;
	return 0;
}

int bw_repo_find_snapshot(struct bw_repo *r, const char *spec,
                          const char *host, const char *path,
                          struct bw_snapshot *out)
{
	struct bw_snapshot *v;
	size_t n, hit = 0, which = 0;
	int rc = bw_repo_snapshots(r, &v, &n);
	if (rc)
		return rc;
	int latest = !strcmp(spec, "latest");
	for (size_t i = 0; i < n; i++) {
		char hex[2 * BW_ID_LEN + 1];
		if (latest) {
			if (host && strcmp(v[i].hostname, host))
				continue;
			if (path && !has_path(&v[i], path))
				continue;
			which = i;
			hit = 1;
			continue;
		}
		bw_id_hex(&v[i].id, hex);
		if (strlen(spec) >= 4 && !strncmp(hex, spec, strlen(spec))) {
			hit++;
			which = i;
		}
	}
	if (!hit)
		rc = latest ? bw_errf(BW_ENOENT, "no snapshot found")
		            : bw_errf(BW_ENOENT, "no snapshot matches '%s' (give at least 4 hex digits)", spec);
	else if (hit > 1)
		rc = bw_errf(BW_EINVAL, "'%s' matches %zu snapshots: give more digits", spec, hit);
	else {
		*out = v[which];
		memset(&v[which], 0, sizeof v[which]);
	}
	bw_snapshots_free(v, n);
	return rc;
}

int bw_repo_save_snapshot(struct bw_repo *r, struct bw_snapshot *s)
{
	struct bw_buf b;
	bw_buf_init(&b, BW_OBJ_MAX);
	int rc = bw_snapshot_to_json(s, &b);
	if (!rc)
		rc = bw_repo_save_obj(r, BW_OBJ_SNAPSHOT, b.data, b.len, &s->id);
	bw_buf_release(&b);
	return rc;
}

int bw_repo_remove_snapshot(struct bw_repo *r, const struct bw_id *id)
{
	char hex[2 * BW_ID_LEN + 1];
	bw_id_hex(id, hex);
	return bw_be_remove(r->be, BW_OBJ_SNAPSHOT, hex);
}

int bw_repo_cat(struct bw_repo *r, const char *type, const char *name,
                struct bw_buf *out)
{
	enum bw_obj t;
	if (bw_obj_parse(type, &t))
		return bw_errf(BW_EINVAL, "unknown object type '%s' (config, key, pack, index, snapshot, lock, plan)", type);
	if (t == BW_OBJ_CONFIG || t == BW_OBJ_KEY || t == BW_OBJ_PACK)
		return bw_be_read(r->be, t, name, 0, 0, out);
	return bw_repo_load_obj(r, t, name, out);
}
