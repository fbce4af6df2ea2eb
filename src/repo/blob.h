/* Blob codec: compression and encryption of one stored blob.
 *
 * Stored form: seal(enc key, ad = blob ID, [u8 codec][payload]) where
 * codec 0 = raw, 1 = zstd frame.  The blob ID (HMAC of the plaintext) is
 * the associated data, so a blob moved to another place fails to open. */
#ifndef BW_REPO_BLOB_H
#define BW_REPO_BLOB_H

#include <bulwark/repo.h>

enum bw_blob_type { BW_BLOB_DATA = 0, BW_BLOB_TREE = 1 };

/* Groups: data blobs smaller than BW_GROUP_BLOB_MAX are gathered into
 * groups of about BW_GROUP_TARGET plaintext bytes, compressed as one.
 * Stored form: seal(enc key, ad = "bulwark group", [u8 codec 2]
 * [varint count][count x {32-byte ID, varint raw length}][u8 codec 0|1]
 * [payload: the members' plaintexts in table order]). */
#define BW_GROUP_BLOB_MAX ((size_t)128 << 10)
#define BW_GROUP_TARGET ((size_t)512 << 10)
#define BW_GROUP_RAW_MAX ((size_t)4 << 20)  /* bound on read */
#define BW_GROUP_MAX_MEMBERS 4096

struct bw_group_member {
	struct bw_id id;
	uint8_t type;
	uint32_t raw_length;
};

/* Per-thread scratch: zstd contexts and buffers. */
struct bw_blob_ctx;
struct bw_blob_ctx *bw_blob_ctx_new(int level); /* level 0: never compress */
void bw_blob_ctx_free(struct bw_blob_ctx *c);

/* Encode plaintext p[0..n) with ID id into out (replaced).
 * Compression is skipped when a sample shows the data does not shrink. */
int bw_blob_encode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, const uint8_t *p, size_t n,
                   struct bw_buf *out) BW_WUR;
/* Seal members m[0..nm) whose plaintexts lie back to back in p[0..n). */
int bw_group_encode(struct bw_blob_ctx *c, const struct bw_keys *k,
                    const struct bw_group_member *m, size_t nm,
                    const uint8_t *p, size_t n, struct bw_buf *out) BW_WUR;
/* Decode stored bytes into out (replaced); raw_len is the expected
 * plaintext length (from the index); grouped: p is the group holding id.
 * BW_EAUTH / BW_EFORMAT on damage. */
int bw_blob_decode(struct bw_blob_ctx *c, const struct bw_keys *k,
                   const struct bw_id *id, int grouped, const uint8_t *p,
                   size_t n, size_t raw_len, struct bw_buf *out) BW_WUR;

#endif
