/* libFuzzer target: the deletion plan decoder (plans are read from the
 * repository by every backup and prune).  Whatever decodes must encode,
 * and the encoding must decode to the same time and packs. */
#include "repo_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_id *packs = NULL, *again = NULL;
	size_t n = 0, n2 = 0;
	int64_t t = 0, t2 = 0;
	struct bw_buf b;
	if (bw_plan_decode(data, size, &t, &packs, &n))
		return 0;
	if (n && !packs)
		abort();
	bw_buf_init(&b, BW_OBJ_MAX);
	if (bw_plan_encode(t, packs, n, &b))
		abort();
	if (bw_plan_decode(b.data, b.len, &t2, &again, &n2))
		abort();
	if (t2 != t || n2 != n || (n && memcmp(packs, again, n * sizeof *packs)))
		abort();
	bw_buf_release(&b);
	free(packs);
	free(again);
	return 0;
}
