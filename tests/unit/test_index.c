/* Blob index: insert/lookup/claim/forget, growth to 1M entries, threads,
 * and the index file format (round trip and malformed input). */
#include "index.h"
#include "test.h"

#include <pthread.h>

static void make_id(struct bw_id *id, uint64_t i, uint8_t salt)
{
	bw_sha256(&i, sizeof i, id);
	id->b[31] ^= salt;
}

static void test_basic(void)
{
	struct bw_index *x = bw_index_new();
	struct bw_index_entry e, got;
	struct bw_id pa, pb, id;
	uint32_t na, nb, n2;

	CHECK(x != NULL);
	CHECK(sizeof(struct bw_index_entry) <= 52);
	make_id(&pa, 1, 0xAA);
	make_id(&pb, 2, 0xAA);
	CHECK_EQ_INT(bw_index_add_pack(x, &pa, &na), 0);
	CHECK_EQ_INT(bw_index_add_pack(x, &pb, &nb), 0);
	CHECK_EQ_INT(bw_index_add_pack(x, &pa, &n2), 0);
	CHECK_EQ_INT(n2, na);
	CHECK(na != nb);
	CHECK_EQ_INT(bw_index_npacks(x), 2);
	CHECK(bw_index_pack_id(x, nb) && !memcmp(bw_index_pack_id(x, nb), &pb, 32));
	CHECK(bw_index_pack_id(x, 2) == NULL);

	memset(&e, 0, sizeof e);
	make_id(&e.id, 100, 0);
	e.pack = na;
	e.offset = 1234;
	e.length = 99;
	e.raw_length = 50;
	e.type = BW_BLOB_TREE;
	CHECK_EQ_INT(bw_index_insert(x, &e), 0);
	CHECK_EQ_INT(bw_index_lookup(x, &e.id, &got), 0);
	CHECK(!memcmp(&got.id, &e.id, 32));
	CHECK_EQ_INT(got.pack, na);
	CHECK_EQ_INT(got.offset, 1234);
	CHECK_EQ_INT(got.length, 99);
	CHECK_EQ_INT(got.raw_length, 50);
	CHECK_EQ_INT(got.type, BW_BLOB_TREE);
	/* a second copy is not taken */
	e.pack = nb;
	CHECK_EQ_INT(bw_index_insert(x, &e), 1);
	CHECK_EQ_INT(bw_index_lookup(x, &e.id, &got), 0);
	CHECK_EQ_INT(got.pack, na);
	/* bad pack number, oversized length */
	make_id(&e.id, 101, 0);
	e.pack = 7;
	CHECK_EQ_INT(bw_index_insert(x, &e), BW_EINVAL);
	e.pack = na;
	e.length = 1u << 30;
	CHECK_EQ_INT(bw_index_insert(x, &e), BW_EINVAL);
	e.length = 99;

	/* claims: once only, absent for lookup, replaced by insert */
	make_id(&id, 200, 0);
	CHECK_EQ_INT(bw_index_claim(x, &id, BW_BLOB_DATA), 1);
	CHECK_EQ_INT(bw_index_claim(x, &id, BW_BLOB_DATA), 0);
	CHECK_EQ_INT(bw_index_lookup(x, &id, &got), BW_ENOENT);
	CHECK_EQ_INT(bw_index_count(x), 1);
	CHECK_EQ_INT(bw_index_claim(x, &e.id, BW_BLOB_DATA), 1);
	make_id(&e.id, 100, 0);
	CHECK_EQ_INT(bw_index_claim(x, &e.id, BW_BLOB_DATA), 0); /* present */
	e.id = id;
	e.pack = nb;
	CHECK_EQ_INT(bw_index_insert(x, &e), 0);
	CHECK_EQ_INT(bw_index_lookup(x, &id, &got), 0);
	CHECK_EQ_INT(got.pack, nb);
	CHECK_EQ_INT(bw_index_count(x), 2);

	/* forget a pack */
	bw_index_forget_pack(x, nb);
	CHECK_EQ_INT(bw_index_lookup(x, &id, &got), BW_ENOENT);
	make_id(&id, 100, 0);
	CHECK_EQ_INT(bw_index_lookup(x, &id, &got), 0);
	CHECK_EQ_INT(bw_index_count(x), 1);
	bw_index_forget_pack(x, BW_PACK_NONE); /* no-op */
	bw_index_forget_pack(x, UINT32_MAX - 1);
	CHECK_EQ_INT(bw_index_count(x), 1);
	bw_index_free(x);
}

struct count_arg {
	size_t n;
	uint64_t sum_off;
};

static int count_fn(void *arg, const struct bw_index_entry *e)
{
	struct count_arg *a = arg;
	a->n++;
	a->sum_off += e->offset;
	return 0;
}

static int stop_fn(void *arg, const struct bw_index_entry *e)
{
	return 42;
}

/* 1M entries across 1000 packs; forget some packs; everything else is
 * still found. */
static void test_big(void)
{
	const uint32_t n = 1000000, np = 1000;
	struct bw_index *x = bw_index_new();
	struct bw_index_entry e, got;
	uint32_t no;
	size_t bad = 0;

	CHECK(x != NULL);
	for (uint32_t i = 0; i < np; i++) {
		struct bw_id p;
		make_id(&p, i, 0x55);
		CHECK_EQ_INT(bw_index_add_pack(x, &p, &no), 0);
		CHECK_EQ_INT(no, i);
	}
	memset(&e, 0, sizeof e);
	for (uint32_t i = 0; i < n; i++) {
		make_id(&e.id, i, 0);
		e.pack = i % np;
		e.offset = i;
		e.length = i & 0xffff;
		e.raw_length = i ^ 0x5a5a;
		e.type = (uint8_t)(i & 1);
		if (bw_index_insert(x, &e))
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(bw_index_count(x), n);
	for (uint32_t i = 0; i < np; i++) {
		struct bw_id p;
		make_id(&p, i, 0x55);
		const struct bw_id *q = bw_index_pack_id(x, i);
		if (!q || memcmp(q, &p, sizeof p))
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	bw_index_forget_pack(x, 7);
	bw_index_forget_pack(x, 500);
	for (uint32_t i = 0; i < n; i++) {
		make_id(&e.id, i, 0);
		int r = bw_index_lookup(x, &e.id, &got);
		if (i % np == 7 || i % np == 500) {
			if (r != BW_ENOENT)
				bad++;
		} else if (r || got.pack != i % np || got.offset != i ||
		           got.length != (i & 0xffff) ||
		           got.raw_length != (i ^ 0x5a5a) || got.type != (i & 1)) {
			bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);
	for (uint32_t i = 0; i < 1000; i++) {
		make_id(&e.id, i, 1); /* never inserted */
		if (bw_index_lookup(x, &e.id, &got) != BW_ENOENT)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	struct count_arg ca = {0, 0};
	CHECK_EQ_INT(bw_index_each(x, count_fn, &ca), 0);
	CHECK_EQ_INT(ca.n, n - 2000);
	CHECK_EQ_INT(bw_index_each(x, stop_fn, NULL), 42);
	bw_index_free(x);
}

struct thr {
	struct bw_index *x;
	int t;
	uint32_t pack;
	size_t won, bad;
};

#define THR_IDS 50000

static void *thr_main(void *arg)
{
	struct thr *a = arg;
	struct bw_index_entry e, got;
	memset(&e, 0, sizeof e);
	for (uint32_t i = 0; i < THR_IDS; i++) {
		/* every thread races for the same IDs, in different orders */
		uint32_t k = a->t & 1 ? THR_IDS - 1 - i : i;
		make_id(&e.id, k, 0);
		if (bw_index_claim(a->x, &e.id, BW_BLOB_DATA)) {
			a->won++;
			e.pack = a->pack;
			e.offset = k;
			e.length = 100;
			e.raw_length = 1;
			if (bw_index_insert(a->x, &e) != 0)
				a->bad++;
		}
		make_id(&e.id, (k * 7) % THR_IDS, 0);
		int r = bw_index_lookup(a->x, &e.id, &got);
		if (r == 0 && got.offset != (k * 7) % THR_IDS)
			a->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct bw_index *x = bw_index_new();
	struct thr t[4];
	pthread_t th[4];
	size_t won = 0, bad = 0;

	CHECK(x != NULL);
	for (int i = 0; i < 4; i++) {
		struct bw_id p;
		make_id(&p, (uint64_t)i, 0x77);
		t[i] = (struct thr){.x = x, .t = i};
		CHECK_EQ_INT(bw_index_add_pack(x, &p, &t[i].pack), 0);
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		won += t[i].won;
		bad += t[i].bad;
	}
	CHECK_EQ_INT(won, THR_IDS); /* each ID claimed exactly once */
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(bw_index_count(x), THR_IDS);
	bw_index_free(x);
}

/* ---- index files ---------------------------------------------------------- */

struct collect {
	size_t nsup, npacks, nblobs;
	struct bw_id last_pack;
	uint64_t sum;
	int stop_at_blob;
};

static int c_super(void *arg, const struct bw_id *id)
{
	((struct collect *)arg)->nsup++;
	return 0;
}

static int c_pack(void *arg, const struct bw_id *id)
{
	struct collect *c = arg;
	c->npacks++;
	c->last_pack = *id;
	return 0;
}

static int c_blob(void *arg, const struct bw_pack_blob *b)
{
	struct collect *c = arg;
	c->nblobs++;
	c->sum += (uint64_t)b->offset + b->length + b->raw_length + b->type + b->id.b[0];
	if (c->stop_at_blob && c->nblobs == (size_t)c->stop_at_blob)
		return -99;
	return 0;
}

static void test_file(void)
{
	struct bw_id sup[3];
	struct bw_index_pack packs[3];
	struct bw_pack_blob blobs[10];
	struct bw_buf out;
	uint64_t sum = 0;

	for (int i = 0; i < 3; i++)
		make_id(&sup[i], (uint64_t)i, 9);
	for (int i = 0; i < 10; i++) {
		make_id(&blobs[i].id, (uint64_t)i, 3);
		blobs[i].type = (uint8_t)(i % 2);
		blobs[i].offset = (uint32_t)i * 1000;
		blobs[i].length = 1000;
		blobs[i].raw_length = i == 9 ? UINT32_MAX - 5 : (uint32_t)i * 3;
		sum += (uint64_t)blobs[i].offset + blobs[i].length + blobs[i].raw_length +
		       blobs[i].type + blobs[i].id.b[0];
	}
	blobs[8].offset = UINT32_MAX - 1000;
	sum += UINT32_MAX - 1000 - 8000;
	for (int i = 0; i < 3; i++)
		make_id(&packs[i].id, (uint64_t)i, 4);
	packs[0].blobs = blobs;
	packs[0].n = 4;
	packs[1].blobs = blobs + 4;
	packs[1].n = 0;
	packs[2].blobs = blobs + 4;
	packs[2].n = 6;

	bw_buf_init(&out, 0);
	CHECK_EQ_INT(bw_index_file_encode(sup, 3, packs, 3, &out), 0);
	struct collect c = {0};
	struct bw_index_file_cb cb = {c_super, c_pack, c_blob, &c};
	CHECK_EQ_INT(bw_index_file_decode(out.data, out.len, &cb), 0);
	CHECK_EQ_INT(c.nsup, 3);
	CHECK_EQ_INT(c.npacks, 3);
	CHECK_EQ_INT(c.nblobs, 10);
	CHECK(c.sum == sum);
	CHECK(!memcmp(&c.last_pack, &packs[2].id, 32));
	/* NULL callbacks are fine */
	struct bw_index_file_cb none = {NULL, NULL, NULL, NULL};
	CHECK_EQ_INT(bw_index_file_decode(out.data, out.len, &none), 0);
	/* a callback's error stops decoding and is returned */
	struct collect c2 = {.stop_at_blob = 5};
	cb.arg = &c2;
	CHECK_EQ_INT(bw_index_file_decode(out.data, out.len, &cb), -99);
	CHECK_EQ_INT(c2.nblobs, 5);

	/* every truncation fails cleanly */
	size_t bad = 0;
	for (size_t l = 0; l < out.len; l++)
		if (bw_index_file_decode(out.data, l, &none) != BW_EFORMAT)
			bad++;
	CHECK_EQ_INT(bad, 0);
	/* trailing garbage */
	CHECK_EQ_INT(bw_buf_put_u8(&out, 0), 0);
	CHECK_EQ_INT(bw_index_file_decode(out.data, out.len, &none), BW_EFORMAT);
	out.len--;
	/* version and magic */
	out.data[4] = 3;
	CHECK_EQ_INT(bw_index_file_decode(out.data, out.len, &none), BW_EVERSION);
	out.data[4] = 2;
	out.data[1] = 'X';
	CHECK_EQ_INT(bw_index_file_decode(out.data, out.len, &none), BW_EFORMAT);
	bw_buf_release(&out);

	/* hand-made: huge counts, bad type, value >= 2^32, offset+length
	 * past 2^32 */
	static const uint8_t huge_sup[] = "BWIX\x01\xff\xff\xff\xff\x0f";
	CHECK_EQ_INT(bw_index_file_decode(huge_sup, sizeof huge_sup - 1, &none),
	             BW_EFORMAT);
	static const uint8_t huge_packs[] = "BWIX\x01\x00\xff\xff\xff\xff\xff\xff\x01";
	CHECK_EQ_INT(bw_index_file_decode(huge_packs, sizeof huge_packs - 1,
	                                  &none), BW_EFORMAT);
	uint8_t one[5 + 1 + 1 + 32 + 1 + 1 + 32 + 15];
	size_t o = 0;
	memcpy(one, "BWIX\x01\x00\x01", 7);
	o = 7;
	memset(one + o, 1, 32);
	o += 32;
	one[o++] = 1; /* nblobs */
	size_t type_at = o;
	one[o++] = 0;
	memset(one + o, 2, 32);
	o += 32;
	size_t vals = o;
	one[o++] = 5;
	one[o++] = 6;
	one[o++] = 7;
	CHECK_EQ_INT(bw_index_file_decode(one, o, &none), 0);
	one[type_at] = 2;
	CHECK_EQ_INT(bw_index_file_decode(one, o, &none), BW_EFORMAT);
	one[type_at] = 1;
	/* offset = 2^32 (five-byte varint) */
	o = vals;
	memcpy(one + o, "\x80\x80\x80\x80\x10", 5);
	o += 5;
	one[o++] = 6;
	one[o++] = 7;
	CHECK_EQ_INT(bw_index_file_decode(one, o, &none), BW_EFORMAT);
	/* offset = 2^32 - 1, length 6: end past 2^32 */
	o = vals;
	memcpy(one + o, "\xff\xff\xff\xff\x0f", 5);
	o += 5;
	one[o++] = 6;
	one[o++] = 7;
	CHECK_EQ_INT(bw_index_file_decode(one, o, &none), BW_EFORMAT);
	one[o - 2] = 0;
	CHECK_EQ_INT(bw_index_file_decode(one, o, &none), 0);
}

int main(void)
{
	CHECK_EQ_INT(bw_crypto_init(), 0);
	test_basic();
	test_big();
	test_threads();
	test_file();
	TEST_DONE();
}
