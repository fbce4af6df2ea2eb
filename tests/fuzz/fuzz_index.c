/* libFuzzer target: the index file decoder. */
#include "index.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	size_t packs, blobs, supers;
	int stop;
};

static int on_super(void *arg, const struct bw_id *id)
{
	((struct acc *)arg)->supers++;
	return 0;
}

static int on_pack(void *arg, const struct bw_id *id)
{
	((struct acc *)arg)->packs++;
	return 0;
}

static int on_blob(void *arg, const struct bw_pack_blob *b)
{
	struct acc *a = arg;
	if ((uint64_t)b->offset + b->length > UINT32_MAX || b->type > 1)
		abort();
	a->blobs++;
	return a->stop && a->blobs == 3 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acc a = {0, 0, 0, 0};
	struct bw_index_file_cb cb = {on_super, on_pack, on_blob, &a};
	int r = bw_index_file_decode(data, size, &cb);
	/* everything reported took at least its minimum encoding */
	if (r == 0 && 5 + a.supers * 32 + a.packs * 33 + a.blobs * 36 > size)
		abort();
	a = (struct acc){0, 0, 0, 1};
	r = bw_index_file_decode(data, size, &cb);
	if (r > 0 && r != 1)
		abort();
	return 0;
}
