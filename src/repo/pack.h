/* Pack files: many stored blobs followed by an encrypted header.
 *
 *   [blob 0] ... [blob n-1] [sealed header] [u32le sealed header length]
 *   header plaintext: "BWPK" u8 version(2) varint count,
 *                     count x { u8 type, 32-byte ID, varint stored length,
 *                               varint raw length }
 *   blob offsets follow from the order.  Header AD: "bulwark pack header".
 *   Version 2: type | 0x80 starts a group (the stored length is the
 *   group's); type | 0x40 is a further member of that group and has no
 *   stored length (it shares the group's bytes).  Version 1 has no groups.
 * The pack's storage name is SHA-256 of all its bytes. */
#ifndef BW_REPO_PACK_H
#define BW_REPO_PACK_H

#include "backend.h"
#include "blob.h"

#define BW_PACK_TARGET ((uint64_t)16 << 20)
#define BW_PACK_MAX_HEADER ((size_t)64 << 20)
#define BW_PACK_MAX_BLOBS 1000000

struct bw_pack_blob {
	struct bw_id id;
	uint8_t type;
	uint32_t offset, length, raw_length;
	uint8_t grouped; /* offset, length: the group holding the blob */
};

/* Whether blob i of a list in pack order shares the stored bytes of blob
 * i - 1 (both members of one group): a group's bytes count once. */
static inline int bw_pack_same_bytes(const struct bw_pack_blob *b, size_t i)
{
	return i && b[i].grouped && b[i - 1].grouped &&
	       b[i].offset == b[i - 1].offset;
}

struct bw_pack_writer;
/* Stages the pack in a backend temp descriptor (no RAM held for blobs). */
/* alg: the hash that names the pack (the repository format's). */
int bw_pack_writer_new(struct bw_backend *be, enum bw_hash_alg alg,
                       struct bw_pack_writer **out) BW_WUR;
int bw_pack_writer_add(struct bw_pack_writer *w, uint8_t type,
                       const struct bw_id *id, const uint8_t *stored,
                       size_t n, uint32_t raw_length) BW_WUR;
/* Add a small data blob to the pending group (copied; sealed with c and k
 * when the group is full or the pack is finished; both must outlive w). */
int bw_pack_writer_add_grouped(struct bw_pack_writer *w, struct bw_blob_ctx *c,
                               const struct bw_keys *k, uint8_t type,
                               const struct bw_id *id, const uint8_t *p,
                               size_t n) BW_WUR;
/* bytes so far, the pending group's plaintext included */
uint64_t bw_pack_writer_size(const struct bw_pack_writer *w);
uint32_t bw_pack_writer_count(const struct bw_pack_writer *w);
/* Appends the header, stores the pack durably, fills *pack_id and hands
 * the blob list over (*blobs, *n; caller frees *blobs).  Frees w even on
 * error. */
int bw_pack_writer_finish(struct bw_pack_writer *w, const struct bw_keys *k,
                          struct bw_id *pack_id, struct bw_pack_blob **blobs,
                          size_t *n) BW_WUR;
void bw_pack_writer_abort(struct bw_pack_writer *w);

/* Parse a pack's header from its last bytes.  tail holds the last tail_len
 * bytes of a pack of pack_size bytes.  If the header is larger than the
 * tail, returns BW_ETOOBIG with *need set to the tail length required.
 * Checks that blobs tile the pack exactly. */
int bw_pack_header_parse(const struct bw_keys *k, const uint8_t *tail,
                         size_t tail_len, uint64_t pack_size,
                         struct bw_pack_blob **blobs, size_t *n,
                         size_t *need) BW_WUR;
/* Plaintext header decoder (fuzzed); blobs' offsets computed from 0. */
int bw_pack_header_decode(const uint8_t *p, size_t n,
                          struct bw_pack_blob **blobs, size_t *count) BW_WUR;
/* Read a pack's header from the backend. */
int bw_pack_read_header(struct bw_backend *be, const struct bw_keys *k,
                        const char *name, struct bw_pack_blob **blobs,
                        size_t *n) BW_WUR;

#endif
