/* Engine-private view of a repository. */
#ifndef BW_REPO_INT_H
#define BW_REPO_INT_H

#include <bulwark/repo.h>

#include <pthread.h>

#include "backend.h"
#include "blob.h"
#include "index.h"

#define BW_CONFIG_MAX ((size_t)64 << 10)
#define BW_KEYFILE_MAX ((size_t)64 << 10)
#define BW_OBJ_MAX ((size_t)512 << 20) /* index, snapshot, lock, plan */

struct bw_repo {
	struct bw_backend *be;
	struct bw_keys *keys;
	struct bw_id id;
	struct bw_chunker_params chunker;
	int compression;            /* zstd level for data, 0 = off */
	int version;                /* format: 2 stores small blobs in groups,
	                             * 3 names and IDs them with BLAKE3 */
	enum bw_hash_alg hash;      /* names objects by their bytes */
	char key_name[2 * BW_ID_LEN + 1];
	struct bw_index *index;     /* NULL until loaded */
	pthread_mutex_t lock;       /* guards blob_ctx and index loading */
	struct bw_blob_ctx *blob_ctx; /* for single-threaded loads */
	char *cache_dir;
};

/* A blob's ID: a keyed MAC of its plaintext, HMAC-SHA-256 (formats 1
 * and 2) or keyed BLAKE3 (format 3). */
static inline void bw_repo_blob_id(const struct bw_repo *r, const void *p, size_t n,
                                   struct bw_id *out)
{
	if (r->hash == BW_HASH_BLAKE3)
		bw_blake3_keyed(r->keys->mac, p, n, out);
	else
		bw_mac_id(r->keys, p, n, out);
}

/* Whole objects (index, snapshot, lock, plan): [u8 codec][payload]
 * sealed with AD "bulwark <type>", stored under the hex of the format's
 * hash of the stored bytes (r->hash). */
int bw_repo_save_obj(struct bw_repo *r, enum bw_obj t, const void *p,
                     size_t n, struct bw_id *id) BW_WUR;
/* Load, check the name against the content hash, decrypt, decompress. */
int bw_repo_load_obj(struct bw_repo *r, enum bw_obj t, const char *name,
                     struct bw_buf *out) BW_WUR;
/* Decode a stored object's bytes (used by load_obj and fuzzing). */
int bw_repo_open_obj(struct bw_repo *r, enum bw_obj t, const uint8_t *p,
                     size_t n, struct bw_buf *out) BW_WUR;

/* Read one blob's stored bytes given its index entry (any thread). */
int bw_repo_read_blob_raw(struct bw_repo *r, const struct bw_index_entry *e,
                          struct bw_buf *out) BW_WUR;
/* Load a blob with a caller-owned codec context (thread-safe). */
int bw_repo_load_blob_ctx(struct bw_repo *r, struct bw_blob_ctx *c,
                          const struct bw_id *id, struct bw_buf *out) BW_WUR;
int bw_repo_load_tree_ctx(struct bw_repo *r, struct bw_blob_ctx *c,
                          const struct bw_id *id, struct bw_tree *out) BW_WUR;

/* Write one index file for the given packs. */
int bw_repo_write_index(struct bw_repo *r, const struct bw_id *supersedes,
                        size_t nsup, const struct bw_index_pack *packs,
                        size_t npacks, struct bw_id *id) BW_WUR;

/* Packs named by pending prune plans (two-phase deletion). */
int bw_plans_packs(struct bw_repo *r, struct bw_id **packs, size_t *n) BW_WUR;
/* Plan objects (plan.c): {"version":1,"time":...,"packs":[hex...]} */
int bw_plan_decode(const uint8_t *p, size_t n, int64_t *time_ns,
                   struct bw_id **packs, size_t *npacks) BW_WUR;
int bw_plan_encode(int64_t time_ns, const struct bw_id *packs, size_t n,
                   struct bw_buf *out) BW_WUR;

/* Config file: plaintext JSON (parsed before any key is known). */
struct bw_config {
	int version;
	struct bw_id id;
	struct bw_chunker_params chunker;
	int compression;
	int64_t created_ns;
};
int bw_config_decode(const uint8_t *p, size_t n, struct bw_config *c) BW_WUR;
int bw_config_encode(const struct bw_config *c, struct bw_buf *out) BW_WUR;

/* Key files: JSON with Argon2id parameters and the sealed master keys. */
struct bw_keyfile {
	int version;
	uint64_t ops;
	size_t mem;
	uint8_t salt[BW_SALT_LEN];
	int64_t created_ns;
	char host[256], user[256];
	uint8_t sealed[256];
	size_t sealed_len;
};
int bw_keyfile_decode(const uint8_t *p, size_t n, struct bw_keyfile *k) BW_WUR;
int bw_keyfile_encode(const struct bw_keyfile *k, struct bw_buf *out) BW_WUR;

/* Append id to a growable array (*v, *n used, *cap allocated). */
int bw_ids_push(struct bw_id **v, size_t *n, size_t *cap,
                const struct bw_id *id) BW_WUR;

/* Key wrapping (keys.c). */
int bw_key_make(const struct bw_keys *keys, const struct bw_id *config_mac,
                const char *pass, size_t passlen, uint64_t ops, size_t mem,
                struct bw_buf *out) BW_WUR;
int bw_key_try(const uint8_t *file, size_t n, const char *pass,
               size_t passlen, struct bw_keys *keys,
               struct bw_id *config_mac) BW_WUR;

#endif
