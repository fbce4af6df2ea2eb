/* Blob codec and packs: round trips, the compression decision, and damage
 * (flipped bytes, truncation, wrong lengths) being caught. */
#include "pack.h"
#include "test.h"

#include <sys/mman.h>
#include <unistd.h>

/* ---- a tiny in-memory backend (packs only) ---------------------------- */
#define MEM_MAX 16

struct mem_obj {
	char name[2 * BW_ID_LEN + 1];
	struct bw_buf data;
};

struct mem_be {
	struct bw_backend be;
	struct mem_obj obj[MEM_MAX];
	size_t n;
};

static struct mem_obj *mem_find(struct bw_backend *b, const char *name)
{
	struct mem_be *m = (struct mem_be *)b;
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->obj[i].name, name))
			return &m->obj[i];
	return NULL;
}

static int mem_read(struct bw_backend *b, enum bw_obj t, const char *name,
                    uint64_t off, size_t len, struct bw_buf *out)
{
	struct mem_obj *o = mem_find(b, name);
	if (!o)
		return BW_ENOENT;
	if (off > o->data.len)
		return BW_EFORMAT;
	if (len == 0)
		len = o->data.len - (size_t)off;
	if (len > o->data.len - off)
		return BW_EFORMAT;
	return bw_buf_append(out, o->data.data + off, len);
}

static int mem_temp(struct bw_backend *b, int *fd)
{
	*fd = memfd_create("bwtest", MFD_CLOEXEC);
	return *fd < 0 ? BW_EIO : 0;
}

static int mem_write_temp(struct bw_backend *b, enum bw_obj t,
                          const char *name, int fd, uint64_t n)
{
	struct mem_be *m = (struct mem_be *)b;
	int r = 0;
	if (mem_find(b, name)) {
		r = BW_EEXIST;
	} else if (m->n == MEM_MAX) {
		r = BW_ENOSPC;
	} else {
		struct mem_obj *o = &m->obj[m->n];
		bw_buf_init(&o->data, 0);
		if (!(r = bw_buf_reserve(&o->data, (size_t)n)) &&
		    !(r = bw_pread_full(fd, o->data.data, (size_t)n, 0))) {
			o->data.len = (size_t)n;
			snprintf(o->name, sizeof o->name, "%s", name);
			m->n++;
		} else {
			bw_buf_release(&o->data);
		}
	}
	close(fd);
	return r;
}

static int mem_stat(struct bw_backend *b, enum bw_obj t, const char *name,
                    uint64_t *size)
{
	struct mem_obj *o = mem_find(b, name);
	if (!o)
		return BW_ENOENT;
	*size = o->data.len;
	return 0;
}

static const struct bw_backend_ops mem_ops = {
	.read = mem_read,
	.temp = mem_temp,
	.write_temp = mem_write_temp,
	.stat = mem_stat,
};

/* Fallbacks for when the real backend.c is not linked in; the strong
 * definitions there win when it is. */
__attribute__((weak)) int bw_be_read(struct bw_backend *b, enum bw_obj t,
                                     const char *name, uint64_t off,
                                     size_t len, struct bw_buf *out)
{
	return b->ops->read(b, t, name, off, len, out);
}

__attribute__((weak)) int bw_be_stat(struct bw_backend *b, enum bw_obj t,
                                     const char *name, uint64_t *size)
{
	return b->ops->stat(b, t, name, size);
}

/* ---- helpers ------------------------------------------------------------ */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
	static const char *words[] = {"backup ", "restore ", "chunk ", "pack ",
	                              "index ", "snapshot ", "tree ", "blob\n"};
	uint64_t x = seed + 12345;
	size_t i = 0;
	while (i < n) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		const char *w = words[(x >> 33) & 7];
		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
}

static void test_blob(const struct bw_keys *k)
{
	struct bw_blob_ctx *c = bw_blob_ctx_new(3), *c0 = bw_blob_ctx_new(0);
	struct bw_buf enc, dec;
	struct bw_id id, id2;
	size_t n = 1u << 20;
	uint8_t *p = malloc(n);

	CHECK(c && c0 && p);
	bw_buf_init(&enc, 0);
	bw_buf_init(&dec, 0);

	/* compressible: shrinks and round-trips */
	fill_text(p, n, 1);
	bw_mac_id(k, p, n, &id);
	CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, n, &enc), 0);
	CHECK(enc.len < n / 2);
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n, &dec), 0);
	CHECK(dec.len == n && !memcmp(dec.data, p, n));
	/* wrong raw length from the index */
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n - 1, &dec),
	             BW_EFORMAT);
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n + 1, &dec),
	             BW_EFORMAT);
	/* flipped byte, wrong ID (AD), truncation */
	enc.data[enc.len / 2] ^= 0x10;
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n, &dec),
	             BW_EAUTH);
	enc.data[enc.len / 2] ^= 0x10;
	id2 = id;
	id2.b[5] ^= 1;
	CHECK_EQ_INT(bw_blob_decode(c, k, &id2, 0, enc.data, enc.len, n, &dec),
	             BW_EAUTH);
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len - 1, n, &dec),
	             BW_EAUTH);
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, 40, n, &dec),
	             BW_EFORMAT);
	/* level 0 never compresses */
	CHECK_EQ_INT(bw_blob_encode(c0, k, &id, p, n, &enc), 0);
	CHECK_EQ_INT(enc.len, n + BW_SEAL_OVERHEAD + 1);
	CHECK_EQ_INT(bw_blob_decode(c0, k, &id, 0, enc.data, enc.len, n, &dec), 0);
	CHECK(dec.len == n && !memcmp(dec.data, p, n));

	/* incompressible: stored raw, one byte of codec overhead */
	fill_random(p, n, 2);
	bw_mac_id(k, p, n, &id);
	CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, n, &enc), 0);
	CHECK_EQ_INT(enc.len, n + BW_SEAL_OVERHEAD + 1);
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n, &dec), 0);
	CHECK(dec.len == n && !memcmp(dec.data, p, n));
	CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n - 1, &dec),
	             BW_EFORMAT);
	/* small random (no sample) also ends raw */
	CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, 5000, &enc), 0);
	CHECK_EQ_INT(enc.len, 5000 + BW_SEAL_OVERHEAD + 1);

	/* sample from the middle decides: random middle -> raw */
	memset(p, 'a', n);
	fill_random(p + n / 2 - 32768, 65536, 3);
	CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, n, &enc), 0);
	CHECK_EQ_INT(enc.len, n + BW_SEAL_OVERHEAD + 1);

	/* tiny and empty blobs */
	memset(p, 0, 300);
	for (size_t len = 0; len <= 300; len += 100) {
		bw_mac_id(k, p, len, &id);
		CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, len, &enc), 0);
		CHECK(enc.len <= len + BW_SEAL_OVERHEAD + 1);
		CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, len,
		                            &dec), 0);
		CHECK(dec.len == len && (len == 0 || !memcmp(dec.data, p, len)));
	}

	/* timing for the report (not asserted) */
	fill_text(p, n, 9);
	bw_mac_id(k, p, n, &id);
	double t = bw_mono_s();
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, n, &enc), 0);
	double te = bw_mono_s() - t;
	t = bw_mono_s();
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n, &dec), 0);
	double td = bw_mono_s() - t;
	fprintf(stderr, "text (ratio %.2f): encode %.0f MB/s, decode %.0f MB/s\n",
	        (double)enc.len / n, 16.0 * n / te / 1e6, 16.0 * n / td / 1e6);
	fill_random(p, n, 10);
	t = bw_mono_s();
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(bw_blob_encode(c, k, &id, p, n, &enc), 0);
	te = bw_mono_s() - t;
	t = bw_mono_s();
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(bw_blob_decode(c, k, &id, 0, enc.data, enc.len, n, &dec), 0);
	td = bw_mono_s() - t;
	fprintf(stderr, "random: encode %.0f MB/s, decode %.0f MB/s\n",
	        16.0 * n / te / 1e6, 16.0 * n / td / 1e6);

	bw_buf_release(&enc);
	bw_buf_release(&dec);
	bw_blob_ctx_free(c);
	bw_blob_ctx_free(c0);
	free(p);
}

static void test_header_decode(void)
{
	struct bw_pack_blob *b;
	size_t n;
	uint8_t h[64] = "BWPK\x01\x01";

	/* one entry: type 0, ID, length 41, raw 7 */
	h[6] = 0;
	memset(h + 7, 0xab, 32);
	h[39] = 41;
	h[40] = 7;
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(b[0].offset, 0);
		CHECK_EQ_INT(b[0].length, 41);
		CHECK_EQ_INT(b[0].raw_length, 7);
	}
	free(b);
	CHECK_EQ_INT(bw_pack_header_decode(h, 42, &b, &n), BW_EFORMAT);
	CHECK(b == NULL && n == 0);
	CHECK_EQ_INT(bw_pack_header_decode(h, 40, &b, &n), BW_EFORMAT);
	h[39] = 40; /* shorter than any sealed blob */
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	h[39] = 41;
	h[6] = 7; /* unknown type */
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	h[6] = 0;
	h[5] = 2; /* count larger than the bytes allow */
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	h[5] = 1;
	h[4] = 3;
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EVERSION);
	h[4] = 1;
	h[6] = 0x80; /* a group in a version 1 header */
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	h[4] = 2;
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), 0);
	CHECK(n == 1 && b && b[0].grouped && b[0].type == 0);
	free(b);
	b = NULL;
	h[6] = 0x40; /* continues a group that was never started */
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	h[6] = 0xc0;
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	h[6] = 0;
	h[4] = 1;
	h[0] = 'X';
	CHECK_EQ_INT(bw_pack_header_decode(h, 41, &b, &n), BW_EFORMAT);
	CHECK_EQ_INT(bw_pack_header_decode(h, 0, &b, &n), BW_EFORMAT);
	/* empty pack header is well-formed */
	CHECK_EQ_INT(bw_pack_header_decode((const uint8_t *)"BWPK\x01\x00", 6,
	                                   &b, &n), 0);
	CHECK_EQ_INT(n, 0);
	free(b);
}

/* Write nblobs blobs of assorted sizes into a pack; check everything
 * reads back; then damage copies of it. */
static void test_pack(const struct bw_keys *k, struct mem_be *m, int nblobs,
                      int damage)
{
	struct bw_blob_ctx *c = bw_blob_ctx_new(3);
	struct bw_pack_writer *w = NULL;
	struct bw_pack_blob *blobs = NULL, *rb = NULL;
	struct bw_buf enc, dec, whole;
	struct bw_id pid, check, *ids = calloc((size_t)nblobs, sizeof *ids);
	size_t n = 0, rn = 0, maxlen = 600000;
	uint8_t *p = malloc(maxlen);
	char name[2 * BW_ID_LEN + 1];

	CHECK(c && ids && p);
	bw_buf_init(&enc, 0);
	bw_buf_init(&dec, 0);
	bw_buf_init(&whole, 0);
	CHECK_EQ_INT(bw_pack_writer_new(&m->be, BW_HASH_BLAKE3, &w), 0);
	for (int i = 0; i < nblobs && w; i++) {
		/* sizes from tiny to beyond the write buffer */
		size_t len = nblobs > 100 ? (size_t)(i % 50)
		                          : (size_t)((i * 7919) % 5) * 140000 + (size_t)i;
		if (i & 1)
			fill_text(p, len, (uint64_t)i);
		else
			fill_random(p, len, (uint64_t)i);
		bw_mac_id(k, p, len, &ids[i]);
		CHECK_EQ_INT(bw_blob_encode(c, k, &ids[i], p, len, &enc), 0);
		CHECK_EQ_INT(bw_pack_writer_add(w, (uint8_t)(i % 2), &ids[i],
		                                enc.data, enc.len, (uint32_t)len), 0);
	}
	CHECK_EQ_INT(bw_pack_writer_count(w), nblobs);
	CHECK_EQ_INT(bw_pack_writer_finish(w, k, &pid, &blobs, &n), 0);
	CHECK_EQ_INT(n, nblobs);
	bw_id_hex(&pid, name);
	struct mem_obj *o = mem_find(&m->be, name);
	CHECK(o != NULL);
	if (!o)
		goto out;
	/* the name is the BLAKE3 hash of the stored bytes */
	bw_hash(BW_HASH_BLAKE3, o->data.data, o->data.len, &check);
	CHECK(!memcmp(check.b, pid.b, BW_ID_LEN));

	CHECK_EQ_INT(bw_pack_read_header(&m->be, k, name, &rb, &rn), 0);
	CHECK_EQ_INT(rn, n);
	for (size_t i = 0; i < rn && i < n; i++) {
		CHECK(!memcmp(&rb[i].id, &ids[i], sizeof ids[i]));
		CHECK_EQ_INT(rb[i].type, blobs[i].type);
		CHECK_EQ_INT(rb[i].offset, blobs[i].offset);
		CHECK_EQ_INT(rb[i].length, blobs[i].length);
		CHECK_EQ_INT(rb[i].raw_length, blobs[i].raw_length);
		CHECK_EQ_INT(bw_blob_decode(c, k, &rb[i].id, rb[i].grouped,
		                            o->data.data + rb[i].offset,
		                            rb[i].length, rb[i].raw_length, &dec), 0);
		struct bw_id got;
		bw_mac_id(k, dec.data, dec.len, &got);
		CHECK(!memcmp(&got, &ids[i], sizeof got));
	}
	free(rb);
	rb = NULL;

	if (damage) {
		size_t len = o->data.len;
		CHECK_EQ_INT(bw_buf_append(&whole, o->data.data, len), 0);
		uint64_t size = len;
		size_t need;
		/* a flipped byte in the sealed header */
		whole.data[len - 10] ^= 4;
		CHECK_EQ_INT(bw_pack_header_parse(k, whole.data, len, size, &rb,
		                                  &rn, &need), BW_EAUTH);
		CHECK(rb == NULL);
		whole.data[len - 10] ^= 4;
		/* a flipped byte in the length */
		whole.data[len - 3] ^= 1;
		int r = bw_pack_header_parse(k, whole.data, len, size, &rb, &rn,
		                             &need);
		CHECK(r == BW_EFORMAT || r == BW_EAUTH);
		whole.data[len - 3] ^= 1;
		/* truncated at the end, and at the front */
		CHECK(bw_pack_header_parse(k, whole.data, len - 1, size - 1, &rb,
		                           &rn, &need) < 0);
		CHECK_EQ_INT(bw_pack_header_parse(k, whole.data + 1, len - 1,
		                                  size - 1, &rb, &rn, &need),
		             BW_EFORMAT);
		/* too short a tail: asks for more */
		CHECK_EQ_INT(bw_pack_header_parse(k, whole.data + len - 50, 50,
		                                  size, &rb, &rn, &need),
		             BW_ETOOBIG);
		CHECK(need > 50 && need <= len);
		CHECK_EQ_INT(bw_pack_header_parse(k, whole.data + len - need,
		                                  need, size, &rb, &rn, &need), 0);
		free(rb);
		rb = NULL;
		CHECK_EQ_INT(bw_pack_header_parse(k, whole.data, 3, 3, &rb, &rn,
		                                  &need), BW_EFORMAT);
		/* via the backend: a damaged stored pack */
		o->data.data[len - 20] ^= 0x80;
		CHECK_EQ_INT(bw_pack_read_header(&m->be, k, name, &rb, &rn),
		             BW_EAUTH);
		o->data.data[len - 20] ^= 0x80;
		o->data.len = len - 1;
		CHECK(bw_pack_read_header(&m->be, k, name, &rb, &rn) < 0);
		o->data.len = len;
		CHECK_EQ_INT(bw_pack_read_header(&m->be, k, "00", &rb, &rn),
		             BW_ENOENT);
	}
out:
	free(rb);
	free(blobs);
	free(ids);
	free(p);
	bw_buf_release(&enc);
	bw_buf_release(&dec);
	bw_buf_release(&whole);
	bw_blob_ctx_free(c);
}

/* Small blobs in groups, big ones alone, in one pack: the header keeps
 * the members together; every member opens, in order and not; damage and
 * wrong claims are caught. */
static void test_groups(const struct bw_keys *k, struct mem_be *m)
{
	enum { N = 3000 };
	struct bw_blob_ctx *c = bw_blob_ctx_new(3), *c2 = bw_blob_ctx_new(0);
	struct bw_pack_writer *w = NULL;
	struct bw_pack_blob *blobs = NULL, *rb = NULL;
	struct bw_buf enc, dec;
	struct bw_id pid, *ids = calloc(N, sizeof *ids);
	size_t n = 0, rn = 0, *lens = calloc(N, sizeof *lens);
	uint8_t *p = malloc(BW_GROUP_BLOB_MAX + 1000);
	char name[2 * BW_ID_LEN + 1];
	int ngrouped = 0;

	bw_buf_init(&enc, 0);
	bw_buf_init(&dec, 0);
	CHECK(c && c2 && ids && lens && p);
	if (!c || !c2 || !ids || !lens || !p)
		goto out;
	CHECK_EQ_INT(bw_pack_writer_new(&m->be, BW_HASH_BLAKE3, &w), 0);
	for (int i = 0; i < N && w; i++) {
		size_t len = i % 97 == 0 ? BW_GROUP_BLOB_MAX + (size_t)i % 500
		                         : (size_t)(i * 7919) % 3000;
		lens[i] = len;
		if (i % 3)
			fill_text(p, len, (uint64_t)i);
		else
			fill_random(p, len, (uint64_t)i);
		bw_mac_id(k, p, len, &ids[i]);
		if (len < BW_GROUP_BLOB_MAX) {
			CHECK_EQ_INT(bw_pack_writer_add_grouped(w, c, k, 0, &ids[i], p, len), 0);
			ngrouped++;
		} else {
			CHECK_EQ_INT(bw_pack_writer_add_grouped(w, c, k, 0, &ids[i], p, len),
			             BW_EINVAL);
			bw_err_clear();
			CHECK_EQ_INT(bw_blob_encode(c, k, &ids[i], p, len, &enc), 0);
			CHECK_EQ_INT(bw_pack_writer_add(w, 0, &ids[i], enc.data, enc.len,
			                                (uint32_t)len), 0);
		}
	}
	CHECK_EQ_INT(bw_pack_writer_count(w), N);
	CHECK_EQ_INT(bw_pack_writer_finish(w, k, &pid, &blobs, &n), 0);
	CHECK_EQ_INT(n, N);
	bw_id_hex(&pid, name);
	struct mem_obj *o = mem_find(&m->be, name);
	CHECK(o != NULL);
	if (!o)
		goto out;
	CHECK_EQ_INT(bw_pack_read_header(&m->be, k, name, &rb, &rn), 0);
	CHECK_EQ_INT(rn, n);
	if (rn != n)
		goto out;
	int groups = 0, seen = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ_INT(rb[i].grouped, blobs[i].grouped);
		CHECK_EQ_INT(rb[i].offset, blobs[i].offset);
		CHECK_EQ_INT(rb[i].length, blobs[i].length);
		CHECK_EQ_INT(rb[i].raw_length, blobs[i].raw_length);
		if (rb[i].grouped) {
			seen++;
			if (!i || !rb[i - 1].grouped || rb[i - 1].offset != rb[i].offset)
				groups++;
		}
	}
	CHECK_EQ_INT(seen, ngrouped);
	CHECK(groups > 1 && groups < ngrouped / 10);
	/* in order, then backwards (a fresh context: every group reopened) */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t t = 0; t < n; t++) {
			size_t i = pass ? n - 1 - t : t;
			struct bw_blob_ctx *x = pass ? c2 : c;
			struct bw_id got;
			CHECK_EQ_INT(bw_blob_decode(x, k, &rb[i].id, rb[i].grouped,
			                            o->data.data + rb[i].offset,
			                            rb[i].length, rb[i].raw_length, &dec), 0);
			bw_mac_id(k, dec.data, dec.len, &got);
			CHECK(!memcmp(&got, &rb[i].id, sizeof got));
		}
	}
	/* find the first group and make claims it cannot back */
	size_t g = 0;
	while (g < n && !rb[g].grouped)
		g++;
	CHECK(g < n);
	if (g < n) {
		const uint8_t *gp = o->data.data + rb[g].offset;
		size_t gl = rb[g].length;
		struct bw_id other = rb[g].id;
		other.b[0] ^= 1;
		struct bw_blob_ctx *x = bw_blob_ctx_new(0);
		CHECK(x != NULL);
		CHECK_EQ_INT(bw_blob_decode(x, k, &other, 1, gp, gl, rb[g].raw_length, &dec),
		             BW_EFORMAT); /* not a member */
		CHECK_EQ_INT(bw_blob_decode(x, k, &rb[g].id, 1, gp, gl,
		                            rb[g].raw_length + 1, &dec), BW_EFORMAT);
		CHECK_EQ_INT(bw_blob_decode(x, k, &rb[g].id, 0, gp, gl, rb[g].raw_length,
		                            &dec), BW_EAUTH); /* a group is no single blob */
		bw_err_clear();
		/* a flipped byte: a context that has not opened the group fails */
		bw_blob_ctx_free(x);
		x = bw_blob_ctx_new(0);
		o->data.data[rb[g].offset + gl / 2] ^= 0x10;
		CHECK_EQ_INT(bw_blob_decode(x, k, &rb[g].id, 1, gp, gl, rb[g].raw_length,
		                            &dec), BW_EAUTH);
		o->data.data[rb[g].offset + gl / 2] ^= 0x10;
		CHECK_EQ_INT(bw_blob_decode(x, k, &rb[g].id, 1, gp, gl - 1, rb[g].raw_length,
		                            &dec), BW_EAUTH);
		CHECK_EQ_INT(bw_blob_decode(x, k, &rb[g].id, 1, gp, 30, rb[g].raw_length,
		                            &dec), BW_EFORMAT);
		bw_err_clear();
		bw_blob_ctx_free(x);
	}
out:
	free(rb);
	free(blobs);
	free(ids);
	free(lens);
	free(p);
	bw_buf_release(&enc);
	bw_buf_release(&dec);
	bw_blob_ctx_free(c);
	bw_blob_ctx_free(c2);
}

static void test_abort(const struct bw_keys *k, struct mem_be *m)
{
	struct bw_pack_writer *w;
	uint8_t blob[100] = {0};
	struct bw_id id = {{0}};
	size_t before = m->n;
	CHECK_EQ_INT(bw_pack_writer_new(&m->be, BW_HASH_BLAKE3, &w), 0);
	CHECK_EQ_INT(bw_pack_writer_add(w, 0, &id, blob, sizeof blob, 10), 0);
	CHECK_EQ_INT(bw_pack_writer_add(w, 0, &id, blob, 40, 10), BW_EINVAL);
	CHECK_EQ_INT(bw_pack_writer_size(w), sizeof blob);
	bw_pack_writer_abort(w);
	CHECK_EQ_INT(m->n, before);
}

int main(void)
{
	static struct mem_be m = {.be = {.ops = &mem_ops}};
	struct bw_keys *k;

	CHECK_EQ_INT(bw_crypto_init(), 0);
	k = bw_keys_new();
	CHECK(k != NULL);
	if (!k)
		TEST_DONE();
	bw_keys_random(k);
	test_blob(k);
	test_header_decode();
	test_pack(k, &m, 12, 1);
	test_pack(k, &m, 3000, 1); /* header larger than the first read */
	test_pack(k, &m, 1, 0);
	test_groups(k, &m);
	test_abort(k, &m);
	for (size_t i = 0; i < m.n; i++)
		bw_buf_release(&m.obj[i].data);
	bw_keys_free(k);
	TEST_DONE();
}
