/* Compressed whole copies: see zcopy.h for the layout.
 *
 * Why: on the machines measured, putting a byte into the page cache of the
 * vault costs more than compressing it (about 400 MB/s against zstd level
 * 1's 1.4 GB/s), and the files worth keeping (databases, documents, logs,
 * source) compress several times over: the PostgreSQL job of
 * bench/guard.sh stored 609 MiB of copies that zstd -1 makes 29 MiB.
 * Content that does not compress costs little: zstd stores such blocks
 * raw after a quick look. */
#include "zcopy.h"

#include "guard_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define GZ_LEVEL 1
#define SKIP_MAGIC 0x184D2A5Eu
#define HDR_LEN 24                /* "BWZ1", chunk, size, n, 0 */
#define TAIL_LEN 8                /* L, "BWZE" */

void gz_writer_release(struct gz_writer *w)
{
	ZSTD_freeCCtx(w->cctx);
	free(w->in);
	free(w->out);
	memset(w, 0, sizeof *w);
}

static int writer_ready(struct gz_writer *w)
{
	if (!w->cctx) {
		/* each frame carries a checksum of its content: a damaged copy
		 * is an error at restore, never wrong bytes */
		w->cctx = ZSTD_createCCtx();
		if (w->cctx &&
		    (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, GZ_LEVEL)) ||
		     ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1)))) {
			ZSTD_freeCCtx(w->cctx);
			w->cctx = NULL;
		}
	}
	if (!w->in)
		w->in = malloc(GZ_BATCH);
	if (!w->out) {
		w->outcap = (GZ_BATCH / GZ_CHUNK) * ZSTD_compressBound(GZ_CHUNK);
		if (w->outcap < ZSTD_compressBound(GZ_BATCH))
			w->outcap = ZSTD_compressBound(GZ_BATCH);
		w->out = malloc(w->outcap);
	}
	return w->cctx && w->in && w->out ? 0 : BW_ENOMEM;
}

/* Whether [pos, pos + len) of fd holds no data (a hole, or past the end). */
static int is_hole(int fd, uint64_t pos, uint64_t len)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO; /* no data after pos; other errors: read it */
	return (uint64_t)d >= pos + len;
}

int gz_write(struct gz_writer *w, int in, int out, uint64_t size, uint64_t *stored)
{
	int r = writer_ready(w);
	if (r)
		return r;
	uint64_t n = (size + GZ_CHUNK - 1) / GZ_CHUNK;
	if (n > UINT32_MAX)
		return BW_ETOOBIG;
	size_t ilen = HDR_LEN + (size_t)n * 8 + TAIL_LEN;
	uint8_t *idx = malloc(8 + ilen);
	if (!idx)
		return BW_ENOMEM;
	uint64_t at = 0; /* written so far */
	for (uint64_t pos = 0, k = 0; pos < size && !r; pos += GZ_BATCH) {
		size_t len = size - pos < GZ_BATCH ? (size_t)(size - pos) : GZ_BATCH;
		if (is_hole(in, pos, len)) {
			memset(w->in, 0, len);
		} else {
			ssize_t got = pread(in, w->in, len, (off_t)pos);
			if (got < 0) {
				r = bw_from_errno(errno);
				break;
			}
			if ((size_t)got < len) /* shorter now: the rest reads as zeros */
				memset(w->in + got, 0, len - (size_t)got);
		}
		size_t o = 0;
		for (size_t c = 0; c < len; c += GZ_CHUNK, k++) {
			size_t cl = len - c < GZ_CHUNK ? len - c : GZ_CHUNK;
			size_t z = ZSTD_compress2(w->cctx, w->out + o, w->outcap - o,
			                          w->in + c, cl);
			if (ZSTD_isError(z)) {
				r = BW_EIO;
				break;
			}
			o += z;
			put_le64(idx + 8 + HDR_LEN + k * 8, at + o);
		}
		if (!r)
			r = bw_pwrite_full(out, w->out, o, at);
		at += o;
	}
	if (!r) {
		uint8_t *p = idx;
		put_le32(p, SKIP_MAGIC);
		put_le32(p + 4, (uint32_t)ilen);
		memcpy(p + 8, "BWZ1", 4);
		put_le32(p + 12, GZ_CHUNK);
		put_le64(p + 16, size);
		put_le32(p + 24, (uint32_t)n);
		put_le32(p + 28, 0);
		put_le32(p + 8 + ilen - 8, (uint32_t)ilen);
		memcpy(p + 8 + ilen - 4, "BWZE", 4);
		r = bw_pwrite_full(out, idx, 8 + ilen, at);
		at += 8 + ilen;
	}
	free(idx);
	if (!r && stored)
		*stored = at;
	return r;
}

int gz_pack(struct gz_writer *w, const uint8_t *p, size_t n, const uint8_t **out,
            size_t *outlen)
{
	int r = writer_ready(w);
	if (r)
		return r;
	if (n > GZ_BATCH)
		return BW_ETOOBIG;
	size_t z = ZSTD_compress2(w->cctx, w->out, w->outcap, p, n);
	if (ZSTD_isError(z))
		return BW_EIO;
	*out = w->out;
	*outlen = z;
	return 0;
}

static int bad(void)
{
	return bw_errf(BW_EFORMAT, "not a compressed vault copy, or a damaged one");
}

int gz_open(struct gz_reader *z, int fd)
{
	memset(z, 0, sizeof *z);
	z->fd = fd;
	z->cached = -1;
	struct stat st;
	if (fstat(fd, &st))
		return bw_from_errno(errno);
	uint64_t fsz = (uint64_t)st.st_size;
	uint8_t t[TAIL_LEN], h[8 + HDR_LEN];
	if (fsz < 8 + HDR_LEN + TAIL_LEN || bw_pread_full(fd, t, sizeof t, fsz - TAIL_LEN))
		return bad();
	uint64_t ilen = get_le32(t);
	if (memcmp(t + 4, "BWZE", 4) || ilen < HDR_LEN + TAIL_LEN || ilen + 8 > fsz ||
	    (ilen - HDR_LEN - TAIL_LEN) % 8)
		return bad();
	uint64_t istart = fsz - ilen - 8; /* where the index frame starts */
	if (bw_pread_full(fd, h, sizeof h, istart) || get_le32(h) != SKIP_MAGIC ||
	    get_le32(h + 4) != ilen || memcmp(h + 8, "BWZ1", 4))
		return bad();
	uint32_t chunk = get_le32(h + 12), n = get_le32(h + 24);
	uint64_t size = get_le64(h + 16);
	if (chunk < 4096 || chunk > (1u << 20) || (chunk & (chunk - 1)) ||
	    (uint64_t)n * 8 != ilen - HDR_LEN - TAIL_LEN ||
	    (size + chunk - 1) / chunk != n || size > (1ULL << 50))
		return bad();
	z->end = malloc(n ? (size_t)n * 8 : 1);
	uint8_t *raw = malloc(n ? (size_t)n * 8 : 1);
	int r = z->end && raw ? 0 : BW_ENOMEM;
	if (!r && n && bw_pread_full(fd, raw, (size_t)n * 8, istart + 8 + HDR_LEN))
		r = bad();
	/* frames in order, none empty or over the bound, the last at the index */
	uint64_t prev = 0, cmax = ZSTD_compressBound(chunk);
	for (uint32_t k = 0; !r && k < n; k++) {
		z->end[k] = get_le64(raw + (size_t)k * 8);
		if (z->end[k] <= prev || z->end[k] - prev > cmax)
			r = bad();
		prev = z->end[k];
	}
	free(raw);
	if (!r && prev != istart)
		r = bad();
	if (!r) {
		z->dctx = ZSTD_createDCtx();
		z->cbuf = malloc(cmax);
		z->dbuf = malloc(chunk);
		if (!z->dctx || !z->cbuf || !z->dbuf)
			r = BW_ENOMEM;
	}
	z->size = size;
	z->chunk = chunk;
	z->n = n;
	if (r)
		gz_close(z);
	return r;
}

void gz_close(struct gz_reader *z)
{
	free(z->end);
	ZSTD_freeDCtx(z->dctx);
	free(z->cbuf);
	free(z->dbuf);
	z->end = NULL;
	z->dctx = NULL;
	z->cbuf = z->dbuf = NULL;
	z->cached = -1;
}

/* Decompress chunk k into dbuf; its length in *len. */
static int load(struct gz_reader *z, uint32_t k, size_t *len)
{
	uint64_t first = (uint64_t)k * z->chunk;
	size_t want = z->size - first < z->chunk ? (size_t)(z->size - first) : z->chunk;
	*len = want;
	if (z->cached == (int64_t)k)
		return 0;
	uint64_t a = k ? z->end[k - 1] : 0;
	size_t cl = (size_t)(z->end[k] - a);
	int r = bw_pread_full(z->fd, z->cbuf, cl, a);
	if (r)
		return r == BW_EFORMAT ? bad() : r;
	z->cached = -1; /* dbuf is about to change */
	size_t d = ZSTD_decompressDCtx(z->dctx, z->dbuf, z->chunk, z->cbuf, cl);
	if (ZSTD_isError(d) || d != want) {
		z->cached = -1;
		return bad();
	}
	z->cached = k;
	return 0;
}

int gz_read(struct gz_reader *z, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len && off < z->size) {
		uint32_t k = (uint32_t)(off / z->chunk);
		size_t cl;
		int r = load(z, k, &cl);
		if (r)
			return r;
		size_t in = (size_t)(off - (uint64_t)k * z->chunk);
		size_t take = cl - in < len - *got ? cl - in : len - *got;
		memcpy(buf + *got, z->dbuf + in, take);
		*got += take;
		off += take;
	}
	return 0;
}

int gz_restore(int in, int out, uint64_t *size)
{
	struct gz_reader z;
	int r = gz_open(&z, in);
	if (r)
		return r;
	for (uint32_t k = 0; !r && k < z.n; k++) {
		size_t cl;
		if (!(r = load(&z, k, &cl)))
			r = gi_write_nonzero(out, z.dbuf, cl, (uint64_t)k * z.chunk, NULL);
	}
	if (!r && ftruncate(out, (off_t)z.size))
		r = bw_from_errno(errno);
	*size = z.size;
	gz_close(&z);
	return r;
}

int gz_unpack(int fd, int64_t off, uint64_t len, int z, uint8_t *buf)
{
	if (off < 0 || len > GZ_BATCH)
		return bad();
	if (!z)
		return bw_pread_full(fd, buf, (size_t)len, (uint64_t)off);
	struct stat st;
	if (fstat(fd, &st))
		return bw_from_errno(errno);
	if ((uint64_t)off >= (uint64_t)st.st_size)
		return bad();
	size_t cap = ZSTD_compressBound((size_t)len);
	if ((uint64_t)st.st_size - (uint64_t)off < cap)
		cap = (size_t)((uint64_t)st.st_size - (uint64_t)off);
	uint8_t *c = malloc(cap ? cap : 1);
	if (!c)
		return BW_ENOMEM;
	int r = bw_pread_full(fd, c, cap, (uint64_t)off);
	if (!r) {
		size_t fl = ZSTD_findFrameCompressedSize(c, cap);
		size_t d = ZSTD_isError(fl) ? fl : ZSTD_decompress(buf, (size_t)len, c, fl);
		if (ZSTD_isError(d) || d != len)
			r = bad();
	} else if (r == BW_EFORMAT) {
		r = bad();
	}
	free(c);
	return r;
}
