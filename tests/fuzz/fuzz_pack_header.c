/* libFuzzer target: the pack header decoder (plaintext), and the bounds
 * checks that run on a pack's tail before it is decrypted. */
#include "pack.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bw_keys k; /* all-zero key: only the bounds matter */
	struct bw_pack_blob *b = NULL;
	size_t n = 0, need = 0;

	if (bw_pack_header_decode(data, size, &b, &n) == 0) {
		uint64_t end = 0;
		for (size_t i = 0; i < n; i++) {
			/* members after a group's first share its bytes */
			if (bw_pack_same_bytes(b, i)) {
				if (b[i].length != b[i - 1].length)
					abort();
				continue;
			}
			/* offsets must tile from 0 without overflow */
			if (b[i].offset != end || b[i].length < BW_SEAL_OVERHEAD + 1)
				abort();
			end += b[i].length;
		}
		if (end > UINT32_MAX)
			abort();
	}
	free(b);
	b = NULL;
	/* the same bytes as the tail of a pack a little larger */
	for (uint64_t extra = 0; extra <= 64; extra += 64) {
		int r = bw_pack_header_parse(&k, data, size, size + extra, &b, &n,
		                             &need);
		if (r == 0 || b != NULL)
			abort(); /* no valid tag without the key's help */
		if (r == BW_ETOOBIG && (need <= size || need > size + extra))
			abort();
	}
	return 0;
}
