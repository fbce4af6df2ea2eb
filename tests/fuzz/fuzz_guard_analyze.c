/* libFuzzer target for the guard's content analysis.  The input is
 *   [cut] [mode] [tile] bytes...
 * cut splits the bytes into an old and a new version; mode bit 0 tiles
 * both up to a few hundred KiB (so that head, middle blocks and tail are
 * all sampled), bit 1 drops the old version (a new file), bit 2 makes the
 * new version the old one with the new bytes written over it (so that
 * most blocks are equal and the diff paths run).  Whatever the input,
 * the results must be in range and self-consistent, and a version
 * compared with itself must show no change. */
#include "analyze.h"

#include <stdlib.h>
#include <string.h>

#define TILE_MAX (320u * 1024u)

static int flag(int v)
{
	return v == 0 || v == 1;
}

static int ent_ok(double e)
{
	return e >= 0.0 && e <= 8.0;
}

static uint8_t *tile(const uint8_t *p, size_t n, size_t times, size_t *out)
{
	size_t len = n * times;
	if (len > TILE_MAX)
		len = TILE_MAX;
	uint8_t *t = malloc(len ? len : 1);
	if (!t)
		abort();
	for (size_t i = 0; i < len; i += n)
		memcpy(t + i, p, len - i < n ? len - i : n);
	*out = len;
	return t;
}

static void check_cmp(const struct bw_sample_cmp *c)
{
	if ((unsigned)c->old_type >= BW_FT_NTYPES ||
	    (unsigned)c->new_type >= BW_FT_NTYPES)
		abort();
	if (!flag(c->magic_lost) || !flag(c->format_broken) ||
	    !flag(c->entropy_up) || !flag(c->b64_camouflage) ||
	    !flag(c->intermittent) || !flag(c->container_new) ||
	    !flag(c->wiped) || !flag(c->suspicious))
		abort();
	if (c->suspicious && c->container_new)
		abort();
	if (c->blocks_changed + c->blocks_shifted > c->blocks_compared ||
	    c->blocks_filled + c->blocks_zeroed + c->blocks_rewritten !=
	            c->blocks_changed ||
	    c->blocks_encoded > c->blocks_rewritten || c->blocks_compared > 81)
		abort();
	if (!ent_ok(c->old_entropy) || !ent_ok(c->new_entropy) ||
	    !ent_ok(c->diff_old_entropy) || !ent_ok(c->diff_new_entropy) ||
	    !(c->changed_byte_frac >= 0.0 && c->changed_byte_frac <= 1.0))
		abort();
	if (c->bytes_read > 2u * 1024u * 1024u)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_sample_cmp c;
	if (size < 3) {
		if (!ent_ok(bw_entropy(data, size)) ||
		    bw_ftype_detect(data, size) >= BW_FT_NTYPES)
			abort();
		return 0;
	}
	unsigned cut = data[0], mode = data[1], times = 1 + data[2] % 128u;
	const uint8_t *p = data + 3;
	size_t n = size - 3, ol = n * cut / 255, nl = n - ol;
	uint8_t *old = NULL, *cur = NULL;
	size_t olen = ol, nlen = nl;

	if (mode & 1) {
		old = tile(p, ol ? ol : 1, ol ? times : 0, &olen);
		cur = tile(p + ol, nl ? nl : 1, nl ? times : 0, &nlen);
	} else {
		old = tile(p, ol ? ol : 1, ol ? 1 : 0, &olen);
		cur = tile(p + ol, nl ? nl : 1, nl ? 1 : 0, &nlen);
	}
	if ((mode & 4) && olen) {
		/* the new bytes written over a copy of the old, at an offset */
		uint8_t *m = malloc(olen);
		if (!m)
			abort();
		memcpy(m, old, olen);
		size_t at = olen * (mode >> 3) / 31;
		size_t k = nlen < olen - at ? nlen : olen - at;
		if (k)
			memcpy(m + at, cur, k);
		free(cur);
		cur = m;
		nlen = olen;
	}

	for (int side = 0; side < 2; side++) {
		const uint8_t *q = side ? cur : old;
		size_t len = side ? nlen : olen;
		if (!ent_ok(bw_entropy(q, len)))
			abort();
		enum bw_ftype t = bw_ftype_detect(q, len);
		if ((unsigned)t >= BW_FT_NTYPES || !bw_ftype_name(t) ||
		    !flag(bw_ftype_is_container(t)))
			abort();
		if (!flag(bw_looks_base64(q, len)))
			abort();
		if (!flag(bw_new_mem_ciphertext_like(q, len)))
			abort();
	}

	if (bw_sample_compare_mem((mode & 2) ? NULL : old, (mode & 2) ? 0 : olen,
	                          cur, nlen, &c))
		abort();
	check_cmp(&c);
	if ((mode & 2) && (c.blocks_compared || c.suspicious || c.wiped))
		abort();

	/* a version against itself: nothing changed, nothing suspicious */
	if (bw_sample_compare_mem(cur, nlen, cur, nlen, &c))
		abort();
	check_cmp(&c);
	if (c.blocks_changed || c.suspicious || c.wiped || c.container_new ||
	    c.old_type != c.new_type)
		abort();

	free(old);
	free(cur);
	return 0;
}
