/* bulwark crypto: repository keys, keyed chunk IDs, authenticated
 * encryption and passphrase-based key wrapping.
 *
 * Algorithms (fixed by repository format version 1):
 *   - object IDs of plaintext blobs: HMAC-SHA-256 under the MAC key
 *   - storage names: SHA-256 of the stored bytes
 *   - encryption: XChaCha20-Poly1305 (IETF), 24-byte random nonce,
 *     computed as HChaCha20 subkey + ChaCha20-Poly1305 so that the fast
 *     OpenSSL implementation is used; bit-compatible with libsodium's
 *     crypto_aead_xchacha20poly1305_ietf_*
 *   - passphrases: Argon2id (libsodium crypto_pwhash) */
#ifndef BULWARK_CRYPTO_H
#define BULWARK_CRYPTO_H

#include <bulwark/core.h>

#define BW_ID_LEN 32
#define BW_KEY_LEN 32
#define BW_NONCE_LEN 24
#define BW_TAG_LEN 16
#define BW_SEAL_OVERHEAD (BW_NONCE_LEN + BW_TAG_LEN)
#define BW_SALT_LEN 16

struct bw_id {
	uint8_t b[BW_ID_LEN];
};

/* The repository's secrets.  Always allocated in guarded sodium memory by
 * bw_keys_new(); freed (and wiped) with bw_keys_free(). */
struct bw_keys {
	uint8_t enc[BW_KEY_LEN];     /* AEAD key for every stored object */
	uint8_t mac[BW_KEY_LEN];     /* keys blob IDs */
	uint8_t chunker[BW_KEY_LEN]; /* keys the chunker's gear table */
};

/* Call once before anything else; 0 or BW_EUNSUP. */
int bw_crypto_init(void) BW_WUR;
/* New zeroed keys in sodium_malloc memory, or NULL. */
struct bw_keys *bw_keys_new(void);
void bw_keys_random(struct bw_keys *k);
void bw_keys_free(struct bw_keys *k);

void bw_random(void *p, size_t n);

/* HMAC-SHA-256(k->mac, data) */
void bw_mac_id(const struct bw_keys *k, const void *data, size_t n,
               struct bw_id *out);
/* BLAKE3 in keyed mode, 256-bit output: blob IDs of format 3. */
void bw_blake3_keyed(const uint8_t key[BW_KEY_LEN], const void *data, size_t n,
                     struct bw_id *out);
void bw_sha256(const void *p, size_t n, struct bw_id *out);

/* The hash that names stored objects by their bytes: SHA-256 (formats 1
 * and 2) or BLAKE3-256 (format 3). */
enum bw_hash_alg { BW_HASH_SHA256, BW_HASH_BLAKE3 };
void bw_hash(enum bw_hash_alg a, const void *p, size_t n, struct bw_id *out);
/* Streaming, for objects being written or read in pieces; NULL if out of
 * memory. */
struct bw_hash;
struct bw_hash *bw_hash_new(enum bw_hash_alg a);
void bw_hash_update(struct bw_hash *h, const void *p, size_t n);
void bw_hash_final(struct bw_hash *h, struct bw_id *out); /* frees h */

/* Encrypt pt (n bytes) under key with associated data ad (may be NULL/0).
 * out receives nonce || ciphertext || tag, n + BW_SEAL_OVERHEAD bytes;
 * out may equal pt + BW_NONCE_LEN (in place). */
int bw_seal(const uint8_t key[BW_KEY_LEN], const void *ad, size_t adlen,
            const void *pt, size_t n, uint8_t *out) BW_WUR;
/* Decrypt in (n bytes, n >= BW_SEAL_OVERHEAD) into out (n -
 * BW_SEAL_OVERHEAD bytes).  BW_EAUTH if anything was altered; out is then
 * wiped.  out may equal in + BW_NONCE_LEN. */
int bw_open(const uint8_t key[BW_KEY_LEN], const void *ad, size_t adlen,
            const uint8_t *in, size_t n, uint8_t *out) BW_WUR;

/* Argon2id.  ops >= 1, mem bytes >= 8 KiB; BW_ENOMEM if mem cannot be had. */
int bw_kdf(const char *pass, size_t passlen, const uint8_t salt[BW_SALT_LEN],
           uint64_t ops, size_t mem, uint8_t out[BW_KEY_LEN]) BW_WUR;

/* Constant-time comparison, 0 if equal. */
int bw_ct_cmp(const void *a, const void *b, size_t n);
void bw_wipe(void *p, size_t n);

void bw_id_hex(const struct bw_id *id, char out[2 * BW_ID_LEN + 1]);
int bw_id_parse(const char *hex, struct bw_id *out) BW_WUR;

#endif
