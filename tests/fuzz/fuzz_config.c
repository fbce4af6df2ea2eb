/* libFuzzer target: the repository config decoder (read before any key
 * is known, so it sees whatever the storage hands over). */
#include "repo_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_config c;
	struct bw_buf b;
	bw_err_clear();
	if (bw_config_decode(data, size, &c))
		return 0;
	/* what decodes must encode and decode to the same values */
	bw_buf_init(&b, 0);
	if (bw_config_encode(&c, &b))
		abort();
	struct bw_config d;
	if (bw_config_decode(b.data, b.len, &d) || d.version != c.version ||
	    d.chunker.min != c.chunker.min || d.chunker.avg != c.chunker.avg ||
	    d.chunker.max != c.chunker.max || d.compression != c.compression ||
	    memcmp(d.id.b, c.id.b, BW_ID_LEN))
		abort();
	bw_buf_release(&b);
	return 0;
}
