/* Blob codec: [u8 codec][payload] sealed with the blob ID as AD.
 *
 * Compression is decided cheaply: large blobs first compress a sample
 * from their middle, and incompressible data (media, archives, already
 * encrypted files) is stored raw without paying for a full zstd pass. */
#include "blob.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

enum { CODEC_RAW = 0, CODEC_ZSTD = 1 };

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
		 * they miss the cache on every probe.  Smaller tables cost under
		 * 1% of ratio on real files and save a third of the time. */
		if (c->level >= 2 && c->level <= 4 &&
		    (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_chainLog, 14)) ||
		     ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_hashLog, 17))))
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
	free(c);
}

/* Whether a sample of p compresses well enough to be worth the full pass. */
static int sample_shrinks(struct bw_blob_ctx *c, const uint8_t *p, size_t n)
{
	size_t off = (n - SAMPLE_LEN) / 2;
	size_t bound = ZSTD_compressBound(SAMPLE_LEN);

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
	/* zstd must beat raw by at least a byte; capacity n - 1 makes it
	 * give up (dstSize_tooSmall) as soon as it cannot */
	m = n > 1 ? try_compress(c, p, n, pt + 1, n - 1) : 0;
	if (m) {
		pt[0] = CODEC_ZSTD;
	} else {
		pt[0] = CODEC_RAW;
		if (n)
			memcpy(pt + 1, p, n);
		m = n;
	}
	/* in place: ciphertext overwrites pt, nonce goes in front */
	if ((r = bw_seal(k->enc, id->b, BW_ID_LEN, pt, m + 1, out->data)))
		return bw_errf(r, "blob: encryption failed");
	out->len = BW_SEAL_OVERHEAD + 1 + m;
	return 0;
}

int bw_blob_decode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, const uint8_t *p, size_t n,
                   size_t raw_len, struct bw_buf *out)
{
	struct bw_buf *s = &c->scratch;
	int r;

	bw_buf_reset(out);
	if (n < BW_SEAL_OVERHEAD + 1)
		return bw_errf(BW_EFORMAT, "blob: %zu stored bytes is too short", n);
	size_t m = n - BW_SEAL_OVERHEAD;
	bw_buf_reset(s);
	if ((r = bw_buf_reserve(s, m)))
		return r;
	if ((r = bw_open(k->enc, id->b, BW_ID_LEN, p, n, s->data)))
		return r == BW_EAUTH ? bw_errf(r, "blob: authentication failed")
		                     : r;
	s->len = m;
	switch (s->data[0]) {
	case CODEC_RAW:
		if (m - 1 != raw_len)
			return bw_errf(BW_EFORMAT,
			               "blob: %zu bytes, index says %zu", m - 1,
			               raw_len);
		return bw_buf_append(out, s->data + 1, m - 1);
	case CODEC_ZSTD: {
		/* the authenticated frame header states the size: check it
		 * before allocating what an (untrusted) index asks for */
		unsigned long long fcs = ZSTD_getFrameContentSize(s->data + 1,
		                                                  m - 1);
		if (fcs == ZSTD_CONTENTSIZE_ERROR)
			return bw_errf(BW_EFORMAT, "blob: bad zstd frame");
		if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != raw_len)
			return bw_errf(BW_EFORMAT,
			               "blob: %llu bytes, index says %zu", fcs,
			               raw_len);
		if ((r = bw_buf_reserve(out, raw_len)))
			return r;
		size_t got = ZSTD_decompressDCtx(c->dctx, out->data, raw_len,
		                                 s->data + 1, m - 1);
		if (ZSTD_isError(got))
			return bw_errf(BW_EFORMAT, "blob: zstd: %s",
			               ZSTD_getErrorName(got));
		if (got != raw_len)
			return bw_errf(BW_EFORMAT,
			               "blob: %zu bytes, index says %zu", got,
			               raw_len);
		out->len = raw_len;
		return 0;
	}
	default:
		return bw_errf(BW_EFORMAT, "blob: unknown codec %u", s->data[0]);
	}
}
