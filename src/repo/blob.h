/* Blob codec: compression and encryption of one stored blob.
 *
 * Stored form: seal(enc key, ad = blob ID, [u8 codec][payload]) where
 * codec 0 = raw, 1 = zstd frame.  The blob ID (HMAC of the plaintext) is
 * the associated data, so a blob moved to another place fails to open. */
#ifndef BW_REPO_BLOB_H
#define BW_REPO_BLOB_H

#include <bulwark/repo.h>

enum bw_blob_type { BW_BLOB_DATA = 0, BW_BLOB_TREE = 1 };

/* Per-thread scratch: zstd contexts and buffers. */
struct bw_blob_ctx;
struct bw_blob_ctx *bw_blob_ctx_new(int level); /* level 0: never compress */
void bw_blob_ctx_free(struct bw_blob_ctx *c);

/* Encode plaintext p[0..n) with ID id into out (replaced).
 * Compression is skipped when a sample shows the data does not shrink. */
int bw_blob_encode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, const uint8_t *p, size_t n,
                   struct bw_buf *out) BW_WUR;
/* Decode stored bytes into out (replaced); raw_len is the expected
 * plaintext length (from the index).  BW_EAUTH / BW_EFORMAT on damage. */
int bw_blob_decode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, const uint8_t *p, size_t n,
                   size_t raw_len, struct bw_buf *out) BW_WUR;

#endif
