/* The blob index: blob ID -> (pack, offset, length, raw length, type).
 *
 * In memory: an open-addressing hash table of 48-byte entries plus a table
 * of pack IDs (about 64 bytes per blob at the load factor used).  Safe for
 * concurrent use by several threads (internal lock).
 *
 * Index files (stored objects, encrypted like other objects):
 *   "BWIX" u8 version(2)
 *   varint nsupersedes, nsupersedes x 32-byte index file IDs
 *   varint npacks, npacks x { 32-byte pack ID, varint nblobs,
 *        nblobs x { u8 type, 32-byte blob ID, varint offset,
 *                   varint length, varint raw length } }
 * Version 2: type | 0x80 marks a blob stored in a group (offset and
 * length are then the group's). */
#ifndef BW_REPO_INDEX_H
#define BW_REPO_INDEX_H

#include "pack.h"

#define BW_PACK_NONE UINT32_MAX

struct bw_index_entry {
	struct bw_id id;
	uint32_t pack; /* number from bw_index_add_pack, or BW_PACK_NONE (claimed) */
	uint32_t offset, length, raw_length;
	uint8_t type;
	uint8_t grouped; /* offset, length: the group holding the blob */
};

struct bw_index;
struct bw_index *bw_index_new(void);
void bw_index_free(struct bw_index *x);
/* Number for a pack ID (the same ID always gets the same number). */
int bw_index_add_pack(struct bw_index *x, const struct bw_id *pack,
                      uint32_t *no) BW_WUR;
const struct bw_id *bw_index_pack_id(const struct bw_index *x, uint32_t no);
uint32_t bw_index_npacks(const struct bw_index *x);
/* Insert; an entry already present (in a real pack) is kept: returns 1.
 * A claimed entry (pack == BW_PACK_NONE) is replaced. */
int bw_index_insert(struct bw_index *x, const struct bw_index_entry *e) BW_WUR;
/* 0 and *out filled, or BW_ENOENT.  Claimed entries count as absent here. */
int bw_index_lookup(struct bw_index *x, const struct bw_id *id,
                    struct bw_index_entry *out);
/* Claim a blob about to be stored: returns 1 if the caller must store it,
 * 0 if it is present or already claimed by another thread. */
int bw_index_claim(struct bw_index *x, const struct bw_id *id, uint8_t type) BW_WUR;
/* Drop every entry in the given pack number (used by prune). */
void bw_index_forget_pack(struct bw_index *x, uint32_t no);
size_t bw_index_count(const struct bw_index *x);
/* Call fn for each entry (not claimed); stops on non-zero return. */
int bw_index_each(struct bw_index *x,
                  int (*fn)(void *arg, const struct bw_index_entry *e),
                  void *arg);

/* The local cache: a sorted table of every entry, mapped read-only so the
 * index need not be held whole in RAM.  attach: only on a new, empty
 * index; registers the cache's packs and returns the index file names it
 * covers (caller frees).  BW_ENOENT if absent, BW_EFORMAT if damaged or
 * of another repository.  write_cache: every live entry (base and
 * in-memory), atomically replacing path. */
int bw_index_attach(struct bw_index *x, const char *path,
                    const struct bw_id *repo, struct bw_id **covered,
                    size_t *ncovered) BW_WUR;
int bw_index_write_cache(struct bw_index *x, const char *path,
                         const struct bw_id *repo, const struct bw_id *covered,
                         size_t ncovered) BW_WUR;
/* entries in the mapped base (0 without a cache) */
size_t bw_index_base_count(const struct bw_index *x);

/* Serialise one index file from packs and their blobs. */
struct bw_index_pack {
	struct bw_id id;
	struct bw_pack_blob *blobs;
	size_t n;
};
int bw_index_file_encode(const struct bw_id *supersedes, size_t nsup,
                         const struct bw_index_pack *packs, size_t npacks,
                         struct bw_buf *out) BW_WUR;
/* Parse untrusted plaintext: for each pack call on_pack, then on_blob for
 * each blob; supersedes IDs are reported through on_super (may be NULL). */
struct bw_index_file_cb {
	int (*on_super)(void *arg, const struct bw_id *id);
	int (*on_pack)(void *arg, const struct bw_id *pack);
	int (*on_blob)(void *arg, const struct bw_pack_blob *b);
	void *arg;
};
int bw_index_file_decode(const uint8_t *p, size_t n,
                         const struct bw_index_file_cb *cb) BW_WUR;

#endif
