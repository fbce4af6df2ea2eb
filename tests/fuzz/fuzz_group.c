/* libFuzzer target: the group decoder behind the AEAD.  The input is the
 * plaintext of a group (member table, codec, payload); it is sealed under
 * a fixed key so that the parser after decryption sees arbitrary bytes.
 * Every member the table names is then asked for, and one ID it does not. */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bw_keys k; /* all-zero keys */
	static struct bw_blob_ctx *c;
	struct bw_buf sealed, out;
	struct bw_id id;

	if (size > ((size_t)1 << 20))
		return 0;
	if (!c && (bw_crypto_init() || !(c = bw_blob_ctx_new(0))))
		abort();
	bw_buf_init(&sealed, 0);
	bw_buf_init(&out, 0);
	if (bw_buf_reserve(&sealed, size + BW_SEAL_OVERHEAD))
		abort();
	memcpy(sealed.data + BW_NONCE_LEN, data, size);
	if (bw_seal(k.enc, "bulwark group", 13, sealed.data + BW_NONCE_LEN, size,
	            sealed.data))
		abort();
	sealed.len = size + BW_SEAL_OVERHEAD;
	/* the IDs at the places a well-formed table would hold them */
	for (size_t off = 1; off + BW_ID_LEN <= size && off < 1 + 4 * 40; off += 33) {
		memcpy(id.b, data + off, BW_ID_LEN);
		for (size_t raw = 0; raw < 3; raw++) {
			if (bw_blob_decode(c, &k, &id, 1, sealed.data, sealed.len,
			                   raw * 7, &out) == 0 && out.len != raw * 7)
				abort();
			bw_err_clear();
		}
	}
	memset(id.b, 0xee, BW_ID_LEN);
	if (bw_blob_decode(c, &k, &id, 1, sealed.data, sealed.len, 0, &out) == 0 &&
	    out.len != 0)
		abort();
	bw_err_clear();
	bw_buf_release(&sealed);
	bw_buf_release(&out);
	return 0;
}
