/* Blob codec: [u8 codec][payload] sealed with the blob ID as AD.
 *
 * Compression is decided cheaply: large blobs first compress a sample
 * from their middle, and incompressible data (media, archives, already
 * encrypted files) is stored raw without paying for a full zstd pass.
 *
 * Small blobs travel in groups: one sealed object (AD "bulwark group")
 * holding a member table and the members' plaintexts compressed as one
 * frame, so small files share a compression context.  The table is inside
 * the AEAD, so a blob is served only by a group that names it.  A context
 * keeps the last group it opened: members read in order decrypt and
 * decompress their group once. */
#include "blob.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

enum { CODEC_RAW = 0, CODEC_ZSTD = 1, CODEC_GROUP = 2 };

static const char group_ad[] = "bulwark group";

struct gmember {
	struct bw_id id;
	uint32_t off, len;
};

/* An opened group, known by its nonce, tag and stored size.  Backup
 * workers fill groups side by side, so a restore in tree order moves
 * between a few of them. */
#define NGROUPS 3
struct group {
	uint8_t key[BW_NONCE_LEN + BW_TAG_LEN];
	size_t stored;
	int valid;
	uint64_t used;
	struct bw_buf data;
	struct gmember *m;
	size_t n, cap, next;
};

#define MIN_COMPRESS 256            /* smaller blobs are stored raw */
#define SAMPLE_ABOVE ((size_t)64 << 10)
#define SAMPLE_LEN ((size_t)32 << 10)
/* the sample must shrink below 97% of its size */
#define SAMPLE_GAIN(in, out) ((out) * 100 < (in) * 97)

struct bw_blob_ctx {
	int level;
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	struct bw_buf scratch; /* sample output; opened plaintext */
	struct group g[NGROUPS]; /* the groups opened last */
	uint64_t tick;
};

struct bw_blob_ctx *bw_blob_ctx_new(int level)
{
	struct bw_blob_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (level > ZSTD_maxCLevel())
		level = ZSTD_maxCLevel();
	c->level = level > 0 ? level : 0;
	bw_buf_init(&c->scratch, 0);
	for (int i = 0; i < NGROUPS; i++)
		bw_buf_init(&c->g[i].data, BW_GROUP_RAW_MAX);
	c->dctx = ZSTD_createDCtx();
	if (!c->dctx)
		goto fail;
	if (c->level) {
		c->cctx = ZSTD_createCCtx();
		if (!c->cctx)
			goto fail;
		/* the AEAD tag already authenticates: no zstd checksum */
		if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
		                                        ZSTD_c_compressionLevel,
		                                        c->level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
		                                        ZSTD_c_checksumFlag, 0)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
		                                        ZSTD_c_nbWorkers, 0)))
			goto fail;
		/* At the fast levels zstd sizes its match tables for the whole
		 * input (128K-entry chain, 256K-entry hash for a 1 MiB blob);
		 * they miss the cache on every probe.  8K- and 64K-entry tables
		 * cost about 1% of ratio on real files and save over a third
		 * of the time (level 3, the benchmark's files). */
		if (c->level >= 2 && c->level <= 4 &&
		    (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_chainLog, 13)) ||
		     ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_hashLog, 16))))
			goto fail;
	}
	return c;
fail:
	bw_blob_ctx_free(c);
	return NULL;
}

void bw_blob_ctx_free(struct bw_blob_ctx *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	if (c->scratch.data)
		bw_wipe(c->scratch.data, c->scratch.cap);
	bw_buf_release(&c->scratch);
	for (int i = 0; i < NGROUPS; i++) {
		if (c->g[i].data.data)
			bw_wipe(c->g[i].data.data, c->g[i].data.cap);
		bw_buf_release(&c->g[i].data);
		free(c->g[i].m);
	}
	free(c);
}

/* Bytes far from uniform always compress: with a collision entropy below
 * 7 bits per byte (sum of squared counts above n^2 / 128) there is no need
 * to pay for a trial.  Text and code are near 5, compressed and encrypted
 * data near 8. */
static int skewed(const uint8_t *p, size_t n)
{
	uint32_t h[256] = {0};
	uint64_t sq = 0;
	for (size_t i = 0; i < n; i++)
		h[p[i]]++;
	for (int i = 0; i < 256; i++)
		sq += (uint64_t)h[i] * h[i];
	return sq * 128 > (uint64_t)n * n;
}

/* Whether a sample of p compresses well enough to be worth the full pass. */
static int sample_shrinks(struct bw_blob_ctx *c, const uint8_t *p, size_t n)
{
	size_t off = (n - SAMPLE_LEN) / 2;
	size_t bound = ZSTD_compressBound(SAMPLE_LEN);

	if (skewed(p + off, SAMPLE_LEN))
		return 1;

	bw_buf_reset(&c->scratch);
	if (bw_buf_reserve(&c->scratch, bound))
		return 1; /* cannot sample: just try */
	size_t r = ZSTD_compress2(c->cctx, c->scratch.data, bound, p + off,
	                          SAMPLE_LEN);
	if (ZSTD_isError(r))
		return 1;
	return SAMPLE_GAIN(SAMPLE_LEN, r);
}

/* Compress p into dst (capacity cap < n).  Returns the compressed length,
 * or 0 when it is not smaller than cap (or zstd failed): store raw. */
static size_t try_compress(struct bw_blob_ctx *c, const uint8_t *p, size_t n,
                           uint8_t *dst, size_t cap)
{
	if (!c->level || n < MIN_COMPRESS)
		return 0;
	if (n > SAMPLE_ABOVE && !sample_shrinks(c, p, n))
		return 0;
	size_t r = ZSTD_compress2(c->cctx, dst, cap, p, n);
	return ZSTD_isError(r) ? 0 : r;
}

/* Write [codec][payload] of p[0..n) at dst (room for 1 + n bytes):
 * zstd if it beats raw by a byte (capacity n - 1 makes it give up,
 * dstSize_tooSmall, as soon as it cannot), else raw.  Returns 1 + the
 * payload length. */
static size_t put_payload(struct bw_blob_ctx *c, const uint8_t *p, size_t n,
                          uint8_t *dst)
{
	size_t m = n > 1 ? try_compress(c, p, n, dst + 1, n - 1) : 0;
	if (m) {
		dst[0] = CODEC_ZSTD;
	} else {
		dst[0] = CODEC_RAW;
		if (n)
			memcpy(dst + 1, p, n);
		m = n;
	}
	return 1 + m;
}

/* The zstd payload src[0..n) into out (empty), which must come to want
 * bytes.  The authenticated frame header states the size: it is checked
 * before allocating what an (untrusted) index asks for.  what names the
 * object and from where want came from, for the messages. */
static int unzstd(struct bw_blob_ctx *c, const uint8_t *src, size_t n,
                  struct bw_buf *out, size_t want, const char *what,
                  const char *from)
{
	int r;
	unsigned long long fcs = ZSTD_getFrameContentSize(src, n);
	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return bw_errf(BW_EFORMAT, "%s: bad zstd frame", what);
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != want)
		return bw_errf(BW_EFORMAT, "%s: %llu bytes, %s says %zu", what, fcs,
		               from, want);
	if ((r = bw_buf_reserve(out, want)))
		return r;
	size_t got = ZSTD_decompressDCtx(c->dctx, out->data, want, src, n);
	if (ZSTD_isError(got))
		return bw_errf(BW_EFORMAT, "%s: zstd: %s", what, ZSTD_getErrorName(got));
	if (got != want)
		return bw_errf(BW_EFORMAT, "%s: %zu bytes, %s says %zu", what, got,
		               from, want);
	out->len = want;
	return 0;
}

int bw_blob_encode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, const uint8_t *p, size_t n,
                   struct bw_buf *out)
{
	int r;
	size_t m;

	bw_buf_reset(out);
	if (n > SIZE_MAX - BW_SEAL_OVERHEAD - 1)
		return BW_ETOOBIG;
	/* room for the raw form, which is also the ceiling for zstd output */
	if ((r = bw_buf_reserve(out, BW_SEAL_OVERHEAD + 1 + n)))
		return bw_errf(r, "blob: cannot hold %zu bytes", n);
	uint8_t *pt = out->data + BW_NONCE_LEN; /* [codec][payload] */
	m = put_payload(c, p, n, pt);
	/* in place: ciphertext overwrites pt, nonce goes in front */
	if ((r = bw_seal(k->enc, id->b, BW_ID_LEN, pt, m, out->data)))
		return bw_errf(r, "blob: encryption failed");
	out->len = BW_SEAL_OVERHEAD + m;
	return 0;
}

int bw_group_encode(struct bw_blob_ctx *c, const struct bw_keys *k,
                    const struct bw_group_member *m, size_t nm,
                    const uint8_t *p, size_t n, struct bw_buf *out)
{
	int r;
	uint64_t sum = 0;

	bw_buf_reset(out);
	if (!nm || nm > BW_GROUP_MAX_MEMBERS || n > BW_GROUP_RAW_MAX)
		return bw_errf(BW_EINVAL, "group: %zu members, %zu bytes", nm, n);
	for (size_t i = 0; i < nm; i++)
		sum += m[i].raw_length;
	if (sum != n)
		return bw_errf(BW_EINVAL, "group: members hold %llu bytes, not %zu",
		               (unsigned long long)sum, n);
	/* [nonce][codec][varint count][count x {ID, varint raw}][codec][data][tag] */
	size_t room = BW_SEAL_OVERHEAD + 1 + 10 + nm * (BW_ID_LEN + 5) + 1 + n;
	if ((r = bw_buf_reserve(out, room)))
		return bw_errf(r, "group: cannot hold %zu bytes", n);
	out->len = BW_NONCE_LEN;
	if ((r = bw_buf_put_u8(out, CODEC_GROUP)) ||
	    (r = bw_buf_put_varint(out, nm)))
		return r;
	for (size_t i = 0; i < nm; i++)
		if ((r = bw_buf_append(out, m[i].id.b, BW_ID_LEN)) ||
		    (r = bw_buf_put_varint(out, m[i].raw_length)))
			return r;
	out->len += put_payload(c, p, n, out->data + out->len);
	uint8_t *pt = out->data + BW_NONCE_LEN;
	size_t ptlen = out->len - BW_NONCE_LEN;
	if ((r = bw_seal(k->enc, group_ad, sizeof group_ad - 1, pt, ptlen, out->data)))
		return bw_errf(r, "group: encryption failed");
	out->len = BW_SEAL_OVERHEAD + ptlen;
	return 0;
}

/* The group in p[0..n): one already open, or opened into the least
 * recently used slot. */
static int group_open(struct bw_blob_ctx *c, const struct bw_keys *k,
                      const uint8_t *p, size_t n, struct group **out)
{
	struct bw_buf *s = &c->scratch;
	struct group *g = NULL;
	struct bw_view v;
	const uint8_t *idp;
	uint64_t cnt, raw, total = 0;
	uint8_t codec;
	int r;

	if (n < BW_SEAL_OVERHEAD + 3)
		return bw_errf(BW_EFORMAT, "group: %zu stored bytes is too short", n);
	for (int i = 0; i < NGROUPS; i++) {
		struct group *x = &c->g[i];
		if (x->valid && x->stored == n && !memcmp(x->key, p, BW_NONCE_LEN) &&
		    !memcmp(x->key + BW_NONCE_LEN, p + n - BW_TAG_LEN, BW_TAG_LEN)) {
			x->used = ++c->tick;
			*out = x;
			return 0;
		}
		if (!g || (g->valid && (!x->valid || x->used < g->used)))
			g = x;
	}
	g->valid = 0;
	g->n = g->next = 0;
	size_t m = n - BW_SEAL_OVERHEAD;
	bw_buf_reset(s);
	if ((r = bw_buf_reserve(s, m)))
		return r;
	if ((r = bw_open(k->enc, group_ad, sizeof group_ad - 1, p, n, s->data)))
		return r == BW_EAUTH ? bw_errf(r, "group: authentication failed") : r;
	s->len = m;
	v = bw_view_make(s->data, m);
	if (bw_view_u8(&v, &codec) || codec != CODEC_GROUP ||
	    bw_view_varint(&v, &cnt) || !cnt || cnt > BW_GROUP_MAX_MEMBERS ||
	    cnt > v.len / (BW_ID_LEN + 1))
		return bw_errf(BW_EFORMAT, "group: bad member table");
	if (cnt > g->cap) {
		struct gmember *gm = realloc(g->m, (size_t)cnt * sizeof *gm);
		if (!gm)
			return BW_ENOMEM;
		g->m = gm;
		g->cap = (size_t)cnt;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (bw_view_take(&v, BW_ID_LEN, &idp) || bw_view_varint(&v, &raw) ||
		    raw > BW_GROUP_RAW_MAX - total)
			return bw_errf(BW_EFORMAT, "group: bad member table");
		memcpy(g->m[i].id.b, idp, BW_ID_LEN);
		g->m[i].off = (uint32_t)total;
		g->m[i].len = (uint32_t)raw;
		total += raw;
	}
	if (bw_view_u8(&v, &codec))
		return bw_errf(BW_EFORMAT, "group: no payload");
	bw_buf_reset(&g->data);
	if (codec == CODEC_RAW) {
		if (v.len != total)
			return bw_errf(BW_EFORMAT, "group: %zu bytes, table says %llu",
			               v.len, (unsigned long long)total);
		if ((r = bw_buf_append(&g->data, v.p, v.len)))
			return r;
	} else if (codec == CODEC_ZSTD) {
		if ((r = unzstd(c, v.p, v.len, &g->data, (size_t)total, "group",
		                "table")))
			return r;
	} else {
		return bw_errf(BW_EFORMAT, "group: unknown codec %u", codec);
	}
	g->n = (size_t)cnt;
	memcpy(g->key, p, BW_NONCE_LEN);
	memcpy(g->key + BW_NONCE_LEN, p + n - BW_TAG_LEN, BW_TAG_LEN);
	g->stored = n;
	g->valid = 1;
	g->used = ++c->tick;
	*out = g;
	return 0;
}

/* A member of a group: members are mostly asked for in their order, so
 * the search starts after the last one found. */
static int group_decode(struct bw_blob_ctx *c, const struct bw_keys *k,
                        const struct bw_id *id, const uint8_t *p, size_t n,
                        size_t raw_len, struct bw_buf *out)
{
	struct group *g = NULL;
	int r = group_open(c, k, p, n, &g);
	if (r)
		return r;
	for (size_t t = 0; t < g->n; t++) {
		size_t i = (g->next + t) % g->n;
		const struct gmember *m = &g->m[i];
		if (memcmp(m->id.b, id->b, BW_ID_LEN))
			continue;
		if (m->len != raw_len)
			return bw_errf(BW_EFORMAT, "blob: %u bytes, index says %zu",
			               m->len, raw_len);
		g->next = i + 1;
		return bw_buf_append(out, g->data.data + m->off, m->len);
	}
	return bw_errf(BW_EFORMAT, "blob: not in the group it is listed in");
}

int bw_blob_decode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, int grouped, const uint8_t *p,
                   size_t n, size_t raw_len, struct bw_buf *out)
{
	struct bw_buf *s = &c->scratch;
	int r;

	bw_buf_reset(out);
	if (grouped)
		return group_decode(c, k, id, p, n, raw_len, out);
	if (n < BW_SEAL_OVERHEAD + 1)
		return bw_errf(BW_EFORMAT, "blob: %zu stored bytes is too short", n);
	/* opened into out: a raw blob (the large incompressible ones) then
	 * needs no second buffer of its size; a zstd payload, smaller, moves
	 * to the scratch buffer to be decompressed back into out */
	size_t m = n - BW_SEAL_OVERHEAD;
	if ((r = bw_buf_reserve(out, m)))
		return r;
	if ((r = bw_open(k->enc, id->b, BW_ID_LEN, p, n, out->data)))
		return r == BW_EAUTH ? bw_errf(r, "blob: authentication failed")
		                     : r;
	switch (out->data[0]) {
	case CODEC_RAW:
		if (m - 1 != raw_len)
			return bw_errf(BW_EFORMAT,
			               "blob: %zu bytes, index says %zu", m - 1,
			               raw_len);
		memmove(out->data, out->data + 1, m - 1);
		out->len = m - 1;
		return 0;
	case CODEC_ZSTD:
		bw_buf_reset(s);
		if ((r = bw_buf_append(s, out->data + 1, m - 1)))
			return r;
		bw_buf_reset(out);
		return unzstd(c, s->data, s->len, out, raw_len, "blob", "index");
	default:
		return bw_errf(BW_EFORMAT, "blob: unknown codec %u", out->data[0]);
	}
}
