/* libFuzzer target: the key file decoder (untrusted JSON from storage). */
#include "repo_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_keyfile k;
	struct bw_buf b;
	bw_err_clear();
	if (bw_keyfile_decode(data, size, &k))
		return 0;
	if (k.ops < 1 || k.ops > 64 || k.mem < 8192 || k.sealed_len > sizeof k.sealed)
		abort();
	bw_buf_init(&b, 0);
	if (bw_keyfile_encode(&k, &b))
		abort();
	struct bw_keyfile k2;
	if (bw_keyfile_decode(b.data, b.len, &k2) || k2.ops != k.ops ||
	    k2.mem != k.mem || k2.sealed_len != k.sealed_len ||
	    memcmp(k2.sealed, k.sealed, k.sealed_len))
		abort();
	bw_buf_release(&b);
	return 0;
}
