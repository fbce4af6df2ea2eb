/* The blob index: an open-addressing hash table with linear probing.
 *
 * Slots are 48 bytes: the ID, the pack number plus one (0 = empty slot,
 * UINT32_MAX = claimed, so a zeroed table is empty), offset, stored
 * length with the blob type (bit 30) and the group flag (bit 31) in its
 * top two bits, and raw length.  IDs are
 * MACs, so their first 8 bytes already are a good hash; they are still
 * mixed with a per-index random seed so that a hostile repository cannot
 * line up probe chains.
 *
 * Pack IDs live in blocks that never move (block b holds 1024 << b IDs),
 * so bw_index_pack_id() can hand out pointers while packs are added. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOT_EMPTY 0u
#define SLOT_CLAIMED UINT32_MAX
#define LEN_BITS 30
#define LEN_MASK ((1u << LEN_BITS) - 1)
#define MAX_PACKS (UINT32_MAX - 2) /* numbers 0..MAX_PACKS-1 */
#define PBLK_BASE 1024u
#define PBLK_N 23 /* 1024 * (2^23 - 1) > MAX_PACKS */
#define INITIAL_BITS 10

struct slot {
	uint8_t id[BW_ID_LEN];
	uint32_t pack; /* pack number + 1, SLOT_EMPTY or SLOT_CLAIMED */
	uint32_t offset;
	uint32_t len_type; /* length | (type | grouped << 1) << LEN_BITS */
	uint32_t raw_length;
};
_Static_assert(sizeof(struct slot) == 48, "index slots are 48 bytes");

/* The base layer: a sorted table of slots mapped read-only from the local
 * cache (see bw_index_attach).  The kernel pages it in on demand and may
 * drop it again, so the index need not be held whole in RAM. */
struct base {
	const struct slot *e; /* sorted by ID; pack = file pack number + 1 */
	size_t n;
	uint32_t npk;
	uint32_t *xlat;       /* file pack number -> pack number here */
	uint32_t *count;      /* entries per file pack */
	uint8_t *dead;        /* forgotten file packs */
	size_t ndead;         /* entries in forgotten packs */
	void *map;
	size_t maplen;
};

struct bw_index {
	pthread_rwlock_t lock;
	struct base base;
	uint64_t seed;
	struct slot *slots;
	unsigned bits;  /* capacity is 1 << bits */
	size_t used;    /* occupied slots, claims included */
	size_t nreal;   /* entries in a pack */
	/* packs */
	struct bw_id *pblk[PBLK_N];
	uint32_t npacks;
	uint32_t *ptab; /* pack number + 1, 0 = empty */
	unsigned pbits;
};

static uint64_t hash_id(const struct bw_index *x, const uint8_t *id)
{
	uint64_t h;
	memcpy(&h, id, sizeof h);
	return (h ^ x->seed) * 0x9E3779B97F4A7C15ull;
}

/* ---- packs ------------------------------------------------------------- */

static struct bw_id *pack_slot(const struct bw_index *x, uint32_t no)
{
	uint64_t q = (uint64_t)no / PBLK_BASE + 1;
	unsigned b = 63u - (unsigned)__builtin_clzll(q);
	uint64_t start = (uint64_t)PBLK_BASE * (((uint64_t)1 << b) - 1);
	return &x->pblk[b][no - start];
}

/* Position in ptab of pack id, or of the empty slot where it belongs. */
static size_t ptab_find(const struct bw_index *x, const struct bw_id *id)
{
	size_t mask = ((size_t)1 << x->pbits) - 1;
	size_t i = (size_t)(hash_id(x, id->b) >> (64 - x->pbits));
	while (x->ptab[i] &&
	       memcmp(pack_slot(x, x->ptab[i] - 1)->b, id->b, BW_ID_LEN))
		i = (i + 1) & mask;
	return i;
}

static int ptab_grow(struct bw_index *x)
{
	unsigned obits = x->pbits;
	uint32_t *old = x->ptab, *nt = calloc((size_t)1 << (obits + 1), sizeof *nt);
	if (!nt)
		return BW_ENOMEM;
	x->ptab = nt;
	x->pbits = obits + 1;
	for (size_t i = 0; i < ((size_t)1 << obits); i++)
		if (old[i])
			x->ptab[ptab_find(x, pack_slot(x, old[i] - 1))] = old[i];
	free(old);
	return 0;
}

int bw_index_add_pack(struct bw_index *x, const struct bw_id *pack,
                      uint32_t *no)
{
	int r = 0;
	pthread_rwlock_wrlock(&x->lock);
	size_t i = ptab_find(x, pack);
	if (x->ptab[i]) {
		*no = x->ptab[i] - 1;
		goto out;
	}
	if (x->npacks >= MAX_PACKS) {
		r = bw_errf(BW_ETOOBIG, "index: too many packs");
		goto out;
	}
	if (((size_t)x->npacks + 1) * 4 > ((size_t)3 << x->pbits)) {
		if ((r = ptab_grow(x)))
			goto out;
		i = ptab_find(x, pack);
	}
	uint64_t q = (uint64_t)x->npacks / PBLK_BASE + 1;
	unsigned b = 63u - (unsigned)__builtin_clzll(q);
	if (!x->pblk[b]) {
		x->pblk[b] = malloc(((size_t)PBLK_BASE << b) * sizeof(struct bw_id));
		if (!x->pblk[b]) {
			r = BW_ENOMEM;
			goto out;
		}
	}
	*pack_slot(x, x->npacks) = *pack;
	x->ptab[i] = x->npacks + 1;
	*no = x->npacks++;
out:
	pthread_rwlock_unlock(&x->lock);
	return r;
}

const struct bw_id *bw_index_pack_id(const struct bw_index *cx, uint32_t no)
{
	struct bw_index *x = (struct bw_index *)cx; /* the lock only */
	const struct bw_id *id = NULL;
	pthread_rwlock_rdlock(&x->lock);
	if (no < x->npacks)
		id = pack_slot(x, no);
	pthread_rwlock_unlock(&x->lock);
	return id;
}

uint32_t bw_index_npacks(const struct bw_index *cx)
{
	struct bw_index *x = (struct bw_index *)cx;
	pthread_rwlock_rdlock(&x->lock);
	uint32_t n = x->npacks;
	pthread_rwlock_unlock(&x->lock);
	return n;
}

/* ---- blobs --------------------------------------------------------------- */

struct bw_index *bw_index_new(void)
{
	struct bw_index *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	if (pthread_rwlock_init(&x->lock, NULL)) {
		free(x);
		return NULL;
	}
	bw_random(&x->seed, sizeof x->seed);
	x->bits = INITIAL_BITS;
	x->pbits = 6;
	x->slots = calloc((size_t)1 << x->bits, sizeof *x->slots);
	x->ptab = calloc((size_t)1 << x->pbits, sizeof *x->ptab);
	if (!x->slots || !x->ptab) {
		bw_index_free(x);
		return NULL;
	}
	return x;
}

void bw_index_free(struct bw_index *x)
{
	if (!x)
		return;
	free(x->slots);
	free(x->ptab);
	for (int b = 0; b < PBLK_N; b++)
		free(x->pblk[b]);
	if (x->base.map)
		munmap(x->base.map, x->base.maplen);
	free(x->base.xlat);
	free(x->base.count);
	free(x->base.dead);
	pthread_rwlock_destroy(&x->lock);
	free(x);
}

/* Live base entry for id, translated to this index's pack numbers. */
static int base_get(const struct bw_index *x, const uint8_t *id, struct slot *out)
{
	const struct base *b = &x->base;
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(b->e[mid].id, id, BW_ID_LEN);
		if (c == 0) {
			uint32_t fp = b->e[mid].pack;
			if (fp == 0 || fp > b->npk || b->dead[fp - 1])
				return 0;
			*out = b->e[mid];
			out->pack = b->xlat[fp - 1] + 1;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Slot holding id, or the empty slot where it belongs. */
static struct slot *find(const struct bw_index *x, const uint8_t *id)
{
	size_t mask = ((size_t)1 << x->bits) - 1;
	size_t i = (size_t)(hash_id(x, id) >> (64 - x->bits));
	for (;;) {
		struct slot *s = &x->slots[i];
		if (s->pack == SLOT_EMPTY || !memcmp(s->id, id, BW_ID_LEN))
			return s;
		i = (i + 1) & mask;
	}
}

static int grow(struct bw_index *x)
{
	struct slot *old = x->slots;
	size_t ocap = (size_t)1 << x->bits;
	struct slot *ns = calloc(ocap * 2, sizeof *ns);
	if (!ns)
		return bw_errf(BW_ENOMEM, "index: cannot grow to %zu entries",
		               ocap * 2);
	x->slots = ns;
	x->bits++;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].pack != SLOT_EMPTY)
			*find(x, old[i].id) = old[i];
	free(old);
	return 0;
}

/* Room for one more entry at a load factor of at most 3/4. */
static int make_room(struct bw_index *x)
{
	if ((x->used + 1) * 4 > ((size_t)3 << x->bits))
		return grow(x);
	return 0;
}

int bw_index_insert(struct bw_index *x, const struct bw_index_entry *e)
{
	int r = 0;
	if (e->length > LEN_MASK || e->type > 1)
		return bw_errf(BW_EINVAL, "index: blob length %u or type %u "
		               "out of range", e->length, e->type);
	pthread_rwlock_wrlock(&x->lock);
	if (e->pack != BW_PACK_NONE && e->pack >= x->npacks) {
		r = bw_errf(BW_EINVAL, "index: unknown pack number %u", e->pack);
		goto out;
	}
	struct slot bs;
	if (x->base.n && base_get(x, e->id.b, &bs)) {
		r = 1; /* present: the first copy is kept */
		goto out;
	}
	if ((r = make_room(x)))
		goto out;
	struct slot *s = find(x, e->id.b);
	if (s->pack != SLOT_EMPTY && s->pack != SLOT_CLAIMED) {
		r = 1; /* present: the first copy is kept */
		goto out;
	}
	if (s->pack == SLOT_EMPTY) {
		memcpy(s->id, e->id.b, BW_ID_LEN);
		x->used++;
	}
	if (e->pack == BW_PACK_NONE) {
		s->pack = SLOT_CLAIMED;
	} else {
		s->pack = e->pack + 1;
		x->nreal++;
	}
	s->offset = e->offset;
	s->len_type = e->length |
	              (uint32_t)(e->type | (e->grouped ? 2 : 0)) << LEN_BITS;
	s->raw_length = e->raw_length;
out:
	pthread_rwlock_unlock(&x->lock);
	return r;
}

static void to_entry(const struct slot *s, struct bw_index_entry *e)
{
	memcpy(e->id.b, s->id, BW_ID_LEN);
	e->pack = s->pack == SLOT_CLAIMED ? BW_PACK_NONE : s->pack - 1;
	e->offset = s->offset;
	e->length = s->len_type & LEN_MASK;
	e->type = (uint8_t)(s->len_type >> LEN_BITS & 1);
	e->grouped = (uint8_t)(s->len_type >> (LEN_BITS + 1));
	e->raw_length = s->raw_length;
}

int bw_index_lookup(struct bw_index *x, const struct bw_id *id,
                    struct bw_index_entry *out)
{
	int r = BW_ENOENT;
	pthread_rwlock_rdlock(&x->lock);
	const struct slot *s = find(x, id->b);
	struct slot bs;
	if (s->pack != SLOT_EMPTY && s->pack != SLOT_CLAIMED) {
		to_entry(s, out);
		r = 0;
	} else if (x->base.n && base_get(x, id->b, &bs)) {
		to_entry(&bs, out);
		r = 0;
	}
	pthread_rwlock_unlock(&x->lock);
	return r;
}

int bw_index_claim(struct bw_index *x, const struct bw_id *id, uint8_t type)
{
	int r = 0;
	pthread_rwlock_wrlock(&x->lock);
	struct slot bs;
	if (x->base.n && base_get(x, id->b, &bs))
		goto out; /* present */
	if (make_room(x)) {
		/* cannot record the claim: let the caller store the blob;
		 * a duplicate is harmless (insert keeps the first) */
		r = 1;
		goto out;
	}
	struct slot *s = find(x, id->b);
	if (s->pack != SLOT_EMPTY)
		goto out;
	memcpy(s->id, id->b, BW_ID_LEN);
	s->pack = SLOT_CLAIMED;
	s->offset = 0;
	s->len_type = (uint32_t)(type & 1) << LEN_BITS;
	s->raw_length = 0;
	x->used++;
	r = 1;
out:
	pthread_rwlock_unlock(&x->lock);
	return r;
}

void bw_index_forget_pack(struct bw_index *x, uint32_t no)
{
	size_t cap, mask, removed = 0, start = 0;
	pthread_rwlock_wrlock(&x->lock);
	cap = (size_t)1 << x->bits;
	mask = cap - 1;
	if (no >= x->npacks)
		goto out;
	for (uint32_t k = 0; k < x->base.npk; k++)
		if (x->base.xlat[k] == no && !x->base.dead[k]) {
			x->base.dead[k] = 1;
			x->base.ndead += x->base.count[k];
		}
	for (size_t i = 0; i < cap; i++) {
		if (x->slots[i].pack == (uint64_t)no + 1) {
			x->slots[i].pack = SLOT_EMPTY;
			removed++;
		}
	}
	if (!removed)
		goto out;
	x->used -= removed;
	x->nreal -= removed;
	/* Emptied slots may cut probe chains: starting after an empty slot,
	 * take every entry out and put it back; each lands at or before its
	 * old place, so one pass restores the invariant. */
	while (x->slots[start].pack != SLOT_EMPTY)
		start++; /* load <= 3/4: there is an empty slot */
	for (size_t k = 1; k <= cap; k++) {
		struct slot *s = &x->slots[(start + k) & mask];
		if (s->pack == SLOT_EMPTY)
			continue;
		struct slot tmp = *s;
		s->pack = SLOT_EMPTY;
		*find(x, tmp.id) = tmp;
	}
out:
	pthread_rwlock_unlock(&x->lock);
}

size_t bw_index_count(const struct bw_index *cx)
{
	struct bw_index *x = (struct bw_index *)cx;
	pthread_rwlock_rdlock(&x->lock);
	size_t n = x->nreal + x->base.n - x->base.ndead;
	pthread_rwlock_unlock(&x->lock);
	return n;
}

/* fn runs under the read lock: it may look entries up but must not
 * insert, claim or forget. */
int bw_index_each(struct bw_index *x,
                  int (*fn)(void *arg, const struct bw_index_entry *e),
                  void *arg)
{
	int r = 0;
	pthread_rwlock_rdlock(&x->lock);
	size_t cap = (size_t)1 << x->bits;
	for (size_t i = 0; i < cap && !r; i++) {
		const struct slot *s = &x->slots[i];
		if (s->pack == SLOT_EMPTY || s->pack == SLOT_CLAIMED)
			continue;
		struct bw_index_entry e;
		to_entry(s, &e);
		r = fn(arg, &e);
	}
	for (size_t i = 0; i < x->base.n && !r; i++) {
		struct slot bs = x->base.e[i];
		uint32_t fp = bs.pack;
		if (fp == 0 || fp > x->base.npk || x->base.dead[fp - 1])
			continue;
		bs.pack = x->base.xlat[fp - 1] + 1;
		struct bw_index_entry e;
		to_entry(&bs, &e);
		r = fn(arg, &e);
	}
	pthread_rwlock_unlock(&x->lock);
	return r;
}

/* ---- the local cache file ------------------------------------------------------
 *
 *   "BWIC" u32le version(1) 32-byte repository ID
 *   u32le nfiles, nfiles x 32-byte index file names it covers
 *   u32le npacks, npacks x { 32-byte pack ID, u32le entries }
 *   u32le nentries_lo, u32le nentries_hi
 *   nentries x 48-byte slots sorted by ID (pack = file pack number + 1)
 *
 * Written by us into the user's cache directory (0600), but still read
 * with every bound checked: a damaged cache is refused and rebuilt. */
#define IC_MAGIC "BWIC"
#define IC_VERSION 1

static size_t ic_header_len(uint32_t nfiles, uint32_t npacks)
{
	return 4 + 4 + BW_ID_LEN + 4 + (size_t)nfiles * BW_ID_LEN + 4 +
	       (size_t)npacks * (BW_ID_LEN + 4) + 8;
}

int bw_index_attach(struct bw_index *x, const char *path,
                    const struct bw_id *repo, struct bw_id **covered,
                    size_t *ncovered)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = BW_EFORMAT;
	struct stat st;
	uint8_t *m = NULL;
	size_t len = 0;
	*covered = NULL;
	*ncovered = 0;
	if (fd < 0)
		return BW_ENOENT;
	if (x->nreal || x->used || x->base.map) {
		close(fd);
		return BW_EINVAL;
	}
	if (fstat(fd, &st) || st.st_size < (off_t)ic_header_len(0, 0))
		goto out;
	len = (size_t)st.st_size;
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		m = NULL;
		r = bw_from_errno(errno);
		goto out;
	}
	struct bw_view v = bw_view_make(m, len);
	const uint8_t *p;
	uint32_t ver, nfiles, npacks, lo, hi;
	if (bw_view_take(&v, 4, &p) || memcmp(p, IC_MAGIC, 4) ||
	    bw_view_u32le(&v, &ver) || ver != IC_VERSION ||
	    bw_view_take(&v, BW_ID_LEN, &p) || memcmp(p, repo->b, BW_ID_LEN) ||
	    bw_view_u32le(&v, &nfiles) || nfiles > v.len / BW_ID_LEN)
		goto out;
	const uint8_t *files = v.p;
	if (bw_view_take(&v, (size_t)nfiles * BW_ID_LEN, &p) ||
	    bw_view_u32le(&v, &npacks) || npacks > v.len / (BW_ID_LEN + 4))
		goto out;
	const uint8_t *packs = v.p;
	if (bw_view_take(&v, (size_t)npacks * (BW_ID_LEN + 4), &p) ||
	    bw_view_u32le(&v, &lo) || bw_view_u32le(&v, &hi))
		goto out;
	uint64_t n = (uint64_t)hi << 32 | lo;
	if (n != v.len / sizeof(struct slot) || v.len % sizeof(struct slot))
		goto out;
	struct base *b = &x->base;
	b->xlat = calloc(npacks ? npacks : 1, sizeof *b->xlat);
	b->count = calloc(npacks ? npacks : 1, sizeof *b->count);
	b->dead = calloc(npacks ? npacks : 1, 1);
	*covered = calloc(nfiles ? nfiles : 1, sizeof **covered);
	if (!b->xlat || !b->count || !b->dead || !*covered) {
		r = BW_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < npacks; i++) {
		struct bw_id id;
		memcpy(id.b, packs + (size_t)i * (BW_ID_LEN + 4), BW_ID_LEN);
		b->count[i] = get_le32(packs + (size_t)i * (BW_ID_LEN + 4) + BW_ID_LEN);
		if ((r = bw_index_add_pack(x, &id, &b->xlat[i])))
			goto out;
	}
	for (uint32_t i = 0; i < nfiles; i++)
		memcpy((*covered)[i].b, files + (size_t)i * BW_ID_LEN, BW_ID_LEN);
	*ncovered = nfiles;
	b->npk = npacks;
	b->e = (const struct slot *)(const void *)v.p;
	b->n = (size_t)n;
	b->map = m;
	b->maplen = len;
	madvise(m, len, MADV_RANDOM);
	m = NULL;
	r = 0;
out:
	if (m)
		munmap(m, len);
	close(fd);
	if (r) {
		free(*covered);
		*covered = NULL;
		*ncovered = 0;
	}
	return r;
}

static int slot_cmp(const void *a, const void *b)
{
	return memcmp(((const struct slot *)a)->id, ((const struct slot *)b)->id, BW_ID_LEN);
}

struct ic_writer {
	int fd;
	uint8_t buf[1 << 16];
	size_t len;
	uint64_t off;
	int err;
};

static void ic_put(struct ic_writer *w, const void *p, size_t n)
{
	if (w->len + n > sizeof w->buf) {
		if (!w->err &&
		    pwrite(w->fd, w->buf, w->len, (off_t)w->off) != (ssize_t)w->len)
			w->err = BW_EIO;
		w->off += w->len;
		w->len = 0;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

int bw_index_write_cache(struct bw_index *x, const char *path,
                         const struct bw_id *repo, const struct bw_id *covered,
                         size_t ncovered)
{
	char tmp[4200];
	struct slot *d = NULL;
	uint32_t *count = NULL;
	size_t nd = 0;
	uint64_t n = 0;
	int r = 0, fd = -1;
	static struct ic_writer w; /* large buffer: not on the stack */
	static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
	if (ncovered > UINT32_MAX)
		return BW_ETOOBIG;
	pthread_mutex_lock(&wmu);
	pthread_rwlock_rdlock(&x->lock);
	size_t cap = (size_t)1 << x->bits;
	d = malloc((x->nreal ? x->nreal : 1) * sizeof *d);
	count = calloc(x->npacks ? x->npacks : 1, sizeof *count);
	if (!d || !count) {
		r = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cap; i++)
		if (x->slots[i].pack != SLOT_EMPTY && x->slots[i].pack != SLOT_CLAIMED)
			d[nd++] = x->slots[i];
	qsort(d, nd, sizeof *d, slot_cmp);
	snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = bw_from_errno(errno);
		goto out;
	}
	memset(&w, 0, sizeof w);
	w.fd = fd;
	w.off = ic_header_len((uint32_t)ncovered, x->npacks);
	/* merge the base (already sorted, live entries) with the delta */
	size_t i = 0, k = 0;
	while (i < x->base.n || k < nd) {
		struct slot bs;
		int take_base;
		if (i < x->base.n && k < nd)
			take_base = memcmp(x->base.e[i].id, d[k].id, BW_ID_LEN) < 0;
		else
			take_base = i < x->base.n;
		if (take_base) {
			bs = x->base.e[i++];
			uint32_t fp = bs.pack;
			if (fp == 0 || fp > x->base.npk || x->base.dead[fp - 1])
				continue;
			bs.pack = x->base.xlat[fp - 1] + 1;
		} else {
			bs = d[k++];
		}
		count[bs.pack - 1]++;
		ic_put(&w, &bs, sizeof bs);
		n++;
	}
	if (w.len && !w.err &&
	    pwrite(fd, w.buf, w.len, (off_t)w.off) != (ssize_t)w.len)
		w.err = BW_EIO;
	/* the header, now that the counts are known */
	struct bw_buf h;
	bw_buf_init(&h, 0);
	r = bw_buf_append(&h, IC_MAGIC, 4);
	if (!r) r = bw_buf_put_u32le(&h, IC_VERSION);
	if (!r) r = bw_buf_append(&h, repo->b, BW_ID_LEN);
	if (!r) r = bw_buf_put_u32le(&h, (uint32_t)ncovered);
	for (size_t f = 0; f < ncovered && !r; f++)
		r = bw_buf_append(&h, covered[f].b, BW_ID_LEN);
	if (!r) r = bw_buf_put_u32le(&h, x->npacks);
	for (uint32_t p = 0; p < x->npacks && !r; p++) {
		r = bw_buf_append(&h, pack_slot(x, p)->b, BW_ID_LEN);
		if (!r) r = bw_buf_put_u32le(&h, count[p]);
	}
	if (!r) r = bw_buf_put_u32le(&h, (uint32_t)n);
	if (!r) r = bw_buf_put_u32le(&h, (uint32_t)(n >> 32));
	if (!r && (w.err || pwrite(fd, h.data, h.len, 0) != (ssize_t)h.len ||
	           fdatasync(fd)))
		r = BW_EIO;
	bw_buf_release(&h);
	if (!r && rename(tmp, path))
		r = bw_from_errno(errno);
out:
	pthread_rwlock_unlock(&x->lock);
	pthread_mutex_unlock(&wmu);
	if (fd >= 0) {
		close(fd);
		if (r)
			unlink(tmp);
	}
	free(d);
	free(count);
	return r;
}

size_t bw_index_base_count(const struct bw_index *x) { return x->base.n; }

/* ---- index files ------------------------------------------------------------ */

#define IX_MAGIC "BWIX"
#define IX_VERSION 2 /* 2: type | 0x80 marks a blob stored in a group */
#define IX_GROUPED 0x80
#define IX_PACK_MIN (BW_ID_LEN + 1)     /* ID, varint nblobs */
#define IX_BLOB_MIN (1 + BW_ID_LEN + 3) /* type, ID, three varints */

int bw_index_file_encode(const struct bw_id *supersedes, size_t nsup,
                         const struct bw_index_pack *packs, size_t npacks,
                         struct bw_buf *out)
{
	int r, grouped = 0;
	/* version 1 when no blob is in a group: older readers can read it */
	for (size_t i = 0; i < npacks && !grouped; i++)
		for (size_t j = 0; j < packs[i].n && !grouped; j++)
			grouped = packs[i].blobs[j].grouped;
	if ((r = bw_buf_append(out, IX_MAGIC, 4)) ||
	    (r = bw_buf_put_u8(out, grouped ? IX_VERSION : 1)) ||
	    (r = bw_buf_put_varint(out, nsup)))
		return r;
	for (size_t i = 0; i < nsup; i++)
		if ((r = bw_buf_append(out, supersedes[i].b, BW_ID_LEN)))
			return r;
	if ((r = bw_buf_put_varint(out, npacks)))
		return r;
	for (size_t i = 0; i < npacks; i++) {
		const struct bw_index_pack *p = &packs[i];
		if ((r = bw_buf_append(out, p->id.b, BW_ID_LEN)) ||
		    (r = bw_buf_put_varint(out, p->n)))
			return r;
		for (size_t j = 0; j < p->n; j++) {
			const struct bw_pack_blob *b = &p->blobs[j];
			if ((r = bw_buf_put_u8(out, b->type | (b->grouped ? IX_GROUPED : 0))) ||
			    (r = bw_buf_append(out, b->id.b, BW_ID_LEN)) ||
			    (r = bw_buf_put_varint(out, b->offset)) ||
			    (r = bw_buf_put_varint(out, b->length)) ||
			    (r = bw_buf_put_varint(out, b->raw_length)))
				return r;
		}
	}
	return 0;
}

static int get_u32(struct bw_view *v, uint32_t *out)
{
	uint64_t x;
	if (bw_view_varint(v, &x) || x > UINT32_MAX)
		return BW_EFORMAT;
	*out = (uint32_t)x;
	return 0;
}

int bw_index_file_decode(const uint8_t *p, size_t n,
                         const struct bw_index_file_cb *cb)
{
	struct bw_view v = bw_view_make(p, n);
	const uint8_t *magic, *raw;
	uint64_t nsup, npacks, nblobs;
	uint8_t version;
	struct bw_id id;
	int r;

	if (bw_view_take(&v, 4, &magic) || memcmp(magic, IX_MAGIC, 4) ||
	    bw_view_u8(&v, &version))
		return BW_EFORMAT;
	if (version < 1 || version > IX_VERSION)
		return BW_EVERSION;
	if (bw_view_varint(&v, &nsup) || nsup > v.len / BW_ID_LEN)
		return BW_EFORMAT;
	for (uint64_t i = 0; i < nsup; i++) {
		if (bw_view_take(&v, BW_ID_LEN, &raw))
			return BW_EFORMAT;
		memcpy(id.b, raw, BW_ID_LEN);
		if (cb && cb->on_super && (r = cb->on_super(cb->arg, &id)))
			return r;
	}
	if (bw_view_varint(&v, &npacks) || npacks > v.len / IX_PACK_MIN)
		return BW_EFORMAT;
	for (uint64_t i = 0; i < npacks; i++) {
		if (bw_view_take(&v, BW_ID_LEN, &raw) ||
		    bw_view_varint(&v, &nblobs) ||
		    nblobs > v.len / IX_BLOB_MIN)
			return BW_EFORMAT;
		memcpy(id.b, raw, BW_ID_LEN);
		if (cb && cb->on_pack && (r = cb->on_pack(cb->arg, &id)))
			return r;
		for (uint64_t j = 0; j < nblobs; j++) {
			struct bw_pack_blob b;
			uint8_t t;
			if (bw_view_u8(&v, &t))
				return BW_EFORMAT;
			b.grouped = version >= 2 && (t & IX_GROUPED);
			b.type = b.grouped ? (uint8_t)(t & ~IX_GROUPED) : t;
			if (b.type > BW_BLOB_TREE ||
			    bw_view_take(&v, BW_ID_LEN, &raw) ||
			    get_u32(&v, &b.offset) || get_u32(&v, &b.length) ||
			    get_u32(&v, &b.raw_length) ||
			    b.length > UINT32_MAX - b.offset)
				return BW_EFORMAT;
			memcpy(b.id.b, raw, BW_ID_LEN);
			if (cb && cb->on_blob && (r = cb->on_blob(cb->arg, &b)))
				return r;
		}
	}
	return v.len ? BW_EFORMAT : 0;
}
