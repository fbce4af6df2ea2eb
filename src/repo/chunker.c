/* FastCDC content-defined chunking with normalised chunking (level 2).
 *
 * Gear hash h = (h << 1) + gear[byte]: bit k of h depends on the last k+1
 * bytes only, so the masks use high bits (a 63-byte window).  Bit 63 is
 * left out of the masks so that the two-bytes-per-step form below, which
 * tests h << 1 against mask << 1, loses no bit.
 *
 * The gear table is ChaCha20 keystream under the repository's chunker
 * key: boundaries depend on the key, so chunk sizes alone do not let the
 * storage recognise known contents. */
#include "chunker.h"

#include <sodium.h>
#include <string.h>

/* Domain separation for the keystream; never change (format). */
static const uint8_t gear_nonce[crypto_stream_chacha20_NONCEBYTES] = {
	'b', 'w', 'g', 'e', 'a', 'r', '0', '1'};

/* nbits consecutive one bits ending at bit 62 */
static uint64_t high_mask(unsigned nbits)
{
	return ((((uint64_t)1 << nbits) - 1) << (63 - nbits));
}

static unsigned log2_u32(uint32_t v)
{
	unsigned b = 0;
	while (v >>= 1)
		b++;
	return b;
}

int bw_chunker_params_check(const struct bw_chunker_params *p)
{
	if (p->min < 4096)
		return bw_errf(BW_EINVAL, "chunker: minimum size %u is below 4096",
		               p->min);
	if (p->avg == 0 || (p->avg & (p->avg - 1)))
		return bw_errf(BW_EINVAL,
		               "chunker: average size %u is not a power of two",
		               p->avg);
	if (!(p->min < p->avg && p->avg < p->max))
		return bw_errf(BW_EINVAL,
		               "chunker: sizes must satisfy min < avg < max "
		               "(got %u, %u, %u)", p->min, p->avg, p->max);
	if (p->max > BW_CHUNK_MAX_LIMIT)
		return bw_errf(BW_EINVAL,
		               "chunker: maximum size %u exceeds the limit %u",
		               p->max, BW_CHUNK_MAX_LIMIT);
	return 0;
}

void bw_chunker_init(struct bw_chunker *c, const uint8_t key[32],
                     const struct bw_chunker_params *p)
{
	uint8_t ks[256 * 8];
	unsigned bits = log2_u32(p->avg);

	crypto_stream_chacha20(ks, sizeof ks, gear_nonce, key);
	for (int i = 0; i < 256; i++) {
		uint64_t v = 0;
		for (int j = 7; j >= 0; j--)
			v = v << 8 | ks[8 * i + j];
		c->gear[i] = v;
	}
	sodium_memzero(ks, sizeof ks);
	c->mask_s = high_mask(bits + 2);
	c->mask_l = high_mask(bits - 2);
	c->min = p->min;
	c->avg = p->avg;
	c->max = p->max;
}

/* Scan p[i..end) with mask m, continuing hash *hp.  Returns the index one
 * past the cut byte, or 0 if there is none (cuts are always > min > 0).
 * Two bytes per step: after h2 = (h << 2) + (gear[a] << 1), h2 == h1 << 1
 * where h1 is the hash after byte a, so h1 & m == 0 iff h2 & (m << 1) ==
 * 0 (m has no bit 63). */
static inline size_t scan(const uint64_t *gear, const uint8_t *p, size_t i,
                          size_t end, uint64_t m, uint64_t *hp)
{
	uint64_t h = *hp, m2 = m << 1;

	if ((end - i) & 1) {
		h = (h << 1) + gear[p[i++]];
		if (!(h & m))
			return i;
	}
	for (; i < end; i += 2) {
		h = (h << 2) + (gear[p[i]] << 1);
		if (!(h & m2))
			return i + 1;
		h += gear[p[i + 1]];
		if (!(h & m))
			return i + 2;
	}
	*hp = h;
	return 0;
}

size_t bw_chunker_next(const struct bw_chunker *c, const uint8_t *p, size_t n,
                       int eof)
{
	size_t limit = n < c->max ? n : c->max;
	size_t normal = c->avg < limit ? c->avg : limit;
	uint64_t h = 0;
	size_t cut;

	if (n <= c->min)
		return eof ? n : 0;
	if ((cut = scan(c->gear, p, c->min, normal, c->mask_s, &h)))
		return cut;
	if ((cut = scan(c->gear, p, normal, limit, c->mask_l, &h)))
		return cut;
	/* no boundary before limit */
	return (limit == c->max || eof) ? limit : 0;
}
