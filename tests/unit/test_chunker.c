/* Chunker: parameter checks, bounds, determinism, keying, and boundary
 * stability under an insertion at the front. */
#include "chunker.h"
#include "test.h"

#include <sodium.h>

#define MIN_ 4096u
#define AVG_ 16384u
#define MAX_ 65536u

/* deterministic pseudo-random bytes */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
}

/* Chunk all of p, feeding at most `step` bytes beyond the current offset
 * (to exercise the need-more-data path).  Writes end offsets of chunks. */
static size_t chunk_all(const struct bw_chunker *c, const uint8_t *p, size_t n,
                        size_t step, size_t *ends, size_t maxends)
{
	size_t off = 0, k = 0, avail = step < n ? step : n;
	while (off < n) {
		size_t len = bw_chunker_next(c, p + off, avail - off, avail == n);
		if (len == 0) {
			CHECK(avail - off < c->max && avail < n);
			avail = avail + step < n ? avail + step : n;
			continue;
		}
		CHECK(len <= avail - off);
		off += len;
		if (k < maxends)
			ends[k] = off;
		k++;
	}
	return k;
}

static size_t count_common(const size_t *a, size_t na, const size_t *b,
                           size_t nb, size_t shift)
{
	size_t i = 0, j = 0, same = 0;
	while (i < na && j < nb) {
		size_t x = a[i] + shift, y = b[j];
		if (x == y) {
			same++;
			i++;
			j++;
		} else if (x < y) {
			i++;
		} else {
			j++;
		}
	}
	return same;
}

int main(void)
{
	struct bw_chunker_params p = {MIN_, AVG_, MAX_};
	struct bw_chunker c, c2;
	uint8_t key[32], key2[32];
	size_t n = 8u << 20;
	uint8_t *buf = malloc(n + 1000);
	size_t maxends = n / MIN_ + 2;
	size_t *e1 = calloc(maxends, sizeof *e1), *e2 = calloc(maxends, sizeof *e2);

	CHECK(bw_crypto_init() == 0);
	CHECK(buf && e1 && e2);

	/* parameter checks */
	CHECK_EQ_INT(bw_chunker_params_check(&p), 0);
	struct bw_chunker_params d = {BW_CHUNK_MIN_DEFAULT, BW_CHUNK_AVG_DEFAULT,
	                              BW_CHUNK_MAX_DEFAULT};
	CHECK_EQ_INT(bw_chunker_params_check(&d), 0);
	struct bw_chunker_params bad[] = {
		{2048, 16384, 65536},   /* min too small */
		{8192, 12288, 65536},   /* avg not a power of two */
		{16384, 16384, 65536},  /* min == avg */
		{4096, 16384, 16384},   /* avg == max */
		{4096, 1u << 20, BW_CHUNK_MAX_LIMIT + 1}, /* max too big */
		{0, 0, 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(bw_chunker_params_check(&bad[i]), BW_EINVAL);

	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		key2[i] = (uint8_t)(i + 1);
	}
	bw_chunker_init(&c, key, &p);
	bw_chunker_init(&c2, key2, &p);
	CHECK(memcmp(c.gear, c2.gear, sizeof c.gear) != 0);
	/* normalised level 2: mask_s has log2(avg)+2 bits, mask_l log2(avg)-2 */
	CHECK_EQ_INT(__builtin_popcountll(c.mask_s), 16);
	CHECK_EQ_INT(__builtin_popcountll(c.mask_l), 12);

	fill(buf, n + 1000, 42);

	/* bounds and average size on random data */
	size_t k1 = chunk_all(&c, buf, n, n, e1, maxends);
	CHECK(k1 > 0 && k1 <= maxends);
	size_t prev = 0, bad_sizes = 0;
	for (size_t i = 0; i < k1 && i < maxends; i++) {
		size_t len = e1[i] - prev;
		if (len > MAX_ || (len < MIN_ && i + 1 != k1))
			bad_sizes++;
		prev = e1[i];
	}
	CHECK_EQ_INT(bad_sizes, 0);
	CHECK_EQ_INT(prev, n);
	double mean = (double)n / (double)k1;
	fprintf(stderr, "chunks: %zu, mean size %.0f (avg %u)\n", k1, mean, AVG_);
	CHECK(mean > AVG_ * 0.6 && mean < AVG_ * 1.6);

	/* determinism, also when fed in small pieces */
	size_t k1b = chunk_all(&c, buf, n, 3 * MAX_ / 2 + 7, e2, maxends);
	CHECK_EQ_INT(k1b, k1);
	CHECK(memcmp(e1, e2, k1 * sizeof *e1) == 0);

	/* another key cuts elsewhere */
	size_t k2 = chunk_all(&c2, buf, n, n, e2, maxends);
	size_t same = count_common(e1, k1, e2, k2, 0);
	CHECK(same < k1 / 10);

	/* insert 1000 bytes at the front: almost all later boundaries stay */
	uint8_t *ins = malloc(n + 1000);
	CHECK(ins != NULL);
	if (ins) {
		fill(ins, 1000, 7);
		memcpy(ins + 1000, buf, n);
		size_t k3 = chunk_all(&c, ins, n + 1000, n + 1000, e2, maxends);
		same = count_common(e1, k1, e2, k3, 1000);
		fprintf(stderr, "after insertion: %zu of %zu boundaries kept\n",
		        same, k1);
		CHECK(same + 3 >= k1);
		free(ins);
	}

	/* zeros: no boundaries from data, cut at max */
	memset(buf, 0, 4 * MAX_);
	CHECK_EQ_INT(bw_chunker_next(&c, buf, 4 * MAX_, 0), MAX_);
	/* need more data / eof handling */
	CHECK_EQ_INT(bw_chunker_next(&c, buf, MIN_, 0), 0);
	CHECK_EQ_INT(bw_chunker_next(&c, buf, MIN_, 1), MIN_);
	CHECK_EQ_INT(bw_chunker_next(&c, buf, 10, 1), 10);
	CHECK_EQ_INT(bw_chunker_next(&c, buf, 0, 1), 0);
	CHECK_EQ_INT(bw_chunker_next(&c, buf, MAX_ - 1, 0), 0);
	CHECK_EQ_INT(bw_chunker_next(&c, buf, MAX_ - 1, 1), MAX_ - 1);

	free(buf);
	free(e1);
	free(e2);
	TEST_DONE();
}
