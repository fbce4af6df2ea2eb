/* Keys, HMAC and BLAKE3 IDs, XChaCha20-Poly1305 and Argon2id. */
#include <bulwark/crypto.h>

#include <blake3.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL 3 looks algorithms up under a global lock on every implicit
 * fetch (EVP_sha256(), HMAC(), ...); with several threads that lock is
 * the bottleneck.  Fetch once, and keep one context per thread. */
static EVP_MD *md_sha256;
static EVP_MAC *mac_hmac;
static EVP_CIPHER *cipher_cc20;

struct tls_crypto {
	EVP_MAC_CTX *mac;
	uint8_t mac_key[BW_KEY_LEN];
	int mac_keyed;
	EVP_CIPHER_CTX *aead;
	EVP_MD_CTX *md;
};
static _Thread_local struct tls_crypto tls;
static pthread_key_t tls_key;

static void tls_free(void *p)
{
	(void)p;
	EVP_MAC_CTX_free(tls.mac);
	EVP_CIPHER_CTX_free(tls.aead);
	EVP_MD_CTX_free(tls.md);
	sodium_memzero(&tls, sizeof tls);
}

static void tls_register(void)
{
	/* any non-NULL value makes the destructor run at thread exit */
	pthread_setspecific(tls_key, &tls);
}

int bw_crypto_init(void)
{
	if (sodium_init() < 0)
		return BW_EUNSUP;
	if (!md_sha256) {
		md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		cipher_cc20 = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
		if (!md_sha256 || !mac_hmac || !cipher_cc20)
			return BW_EUNSUP;
		if (pthread_key_create(&tls_key, tls_free))
			return BW_EUNSUP;
	}
	return 0;
}

struct bw_keys *bw_keys_new(void)
{
	struct bw_keys *k = sodium_malloc(sizeof *k);
	if (k)
		sodium_memzero(k, sizeof *k);
	return k;
}

void bw_keys_random(struct bw_keys *k) { randombytes_buf(k, sizeof *k); }

void bw_keys_free(struct bw_keys *k)
{
	if (k)
		sodium_free(k); /* wipes */
}

void bw_random(void *p, size_t n) { randombytes_buf(p, n); }

void bw_mac_id(const struct bw_keys *k, const void *data, size_t n,
               struct bw_id *out)
{
	size_t len = 0;
	if (!tls.mac) {
		tls.mac = EVP_MAC_CTX_new(mac_hmac);
		tls_register();
	}
	if (!tls.mac_keyed || memcmp(tls.mac_key, k->mac, BW_KEY_LEN)) {
		OSSL_PARAM params[2];
		params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		EVP_MAC_init(tls.mac, k->mac, BW_KEY_LEN, params);
		memcpy(tls.mac_key, k->mac, BW_KEY_LEN);
		tls.mac_keyed = 1;
	} else {
		EVP_MAC_init(tls.mac, NULL, 0, NULL); /* same key: reuse */
	}
	EVP_MAC_update(tls.mac, data, n);
	EVP_MAC_final(tls.mac, out->b, &len, BW_ID_LEN);
}

void bw_sha256(const void *p, size_t n, struct bw_id *out)
{
	unsigned int len = BW_ID_LEN;
	if (!tls.md) {
		tls.md = EVP_MD_CTX_new();
		tls_register();
	}
	EVP_DigestInit_ex2(tls.md, md_sha256, NULL);
	EVP_DigestUpdate(tls.md, p, n);
	EVP_DigestFinal_ex(tls.md, out->b, &len);
}

void bw_blake3_keyed(const uint8_t key[BW_KEY_LEN], const void *data, size_t n,
                     struct bw_id *out)
{
	blake3_hasher h;
	blake3_hasher_init_keyed(&h, key);
	blake3_hasher_update(&h, data, n);
	blake3_hasher_finalize(&h, out->b, BW_ID_LEN);
	sodium_memzero(&h, sizeof h); /* holds the key */
}

void bw_hash(enum bw_hash_alg a, const void *p, size_t n, struct bw_id *out)
{
	if (a == BW_HASH_SHA256) {
		bw_sha256(p, n, out);
		return;
	}
	blake3_hasher h;
	blake3_hasher_init(&h);
	blake3_hasher_update(&h, p, n);
	blake3_hasher_finalize(&h, out->b, BW_ID_LEN);
}

struct bw_hash {
	enum bw_hash_alg alg;
	EVP_MD_CTX *ctx;   /* SHA-256 */
	blake3_hasher b3;  /* BLAKE3 */
};

struct bw_hash *bw_hash_new(enum bw_hash_alg a)
{
	struct bw_hash *h = malloc(sizeof *h);
	if (!h)
		return NULL;
	h->alg = a;
	h->ctx = NULL;
	if (a == BW_HASH_BLAKE3) {
		blake3_hasher_init(&h->b3);
		return h;
	}
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex2(h->ctx, md_sha256, NULL)) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void bw_hash_update(struct bw_hash *h, const void *p, size_t n)
{
	if (h->alg == BW_HASH_BLAKE3)
		blake3_hasher_update(&h->b3, p, n);
	else
		EVP_DigestUpdate(h->ctx, p, n);
}

void bw_hash_final(struct bw_hash *h, struct bw_id *out)
{
	unsigned int len = BW_ID_LEN;
	if (h->alg == BW_HASH_BLAKE3)
		blake3_hasher_finalize(&h->b3, out->b, BW_ID_LEN);
	else
		EVP_DigestFinal_ex(h->ctx, out->b, &len);
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* XChaCha20-Poly1305-IETF: subkey = HChaCha20(key, nonce[0..16]),
 * inner nonce = 0x00000000 || nonce[16..24]. */
static int aead(int enc, const uint8_t key[BW_KEY_LEN],
                const uint8_t nonce[BW_NONCE_LEN], const void *ad,
                size_t adlen, const uint8_t *in, size_t n, uint8_t *out,
                uint8_t tag[BW_TAG_LEN])
{
	uint8_t sub[32], iv[12] = {0};
	int ok = 0, outl = 0;
	if (n > INT32_MAX || adlen > INT32_MAX)
		return BW_ETOOBIG;
	crypto_core_hchacha20(sub, nonce, key, NULL);
	memcpy(iv + 4, nonce + 16, 8);
	if (!tls.aead) {
		tls.aead = EVP_CIPHER_CTX_new();
		tls_register();
	}
	EVP_CIPHER_CTX *c = tls.aead;
	if (!c)
		goto out;
	if (!EVP_CipherInit_ex2(c, cipher_cc20, sub, iv, enc, NULL))
		goto out;
	if (!enc && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, BW_TAG_LEN, tag))
		goto out;
	if (adlen && !EVP_CipherUpdate(c, NULL, &outl, ad, (int)adlen))
		goto out;
	if (n && !EVP_CipherUpdate(c, out, &outl, in, (int)n))
		goto out;
	if (!EVP_CipherFinal_ex(c, out + outl, &outl))
		goto out;
	if (enc && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, BW_TAG_LEN, tag))
		goto out;
	ok = 1;
out:
	sodium_memzero(sub, sizeof sub);
	return ok ? 0 : BW_EAUTH;
}

int bw_seal(const uint8_t key[BW_KEY_LEN], const void *ad, size_t adlen,
            const void *pt, size_t n, uint8_t *out)
{
	uint8_t nonce[BW_NONCE_LEN];
	randombytes_buf(nonce, sizeof nonce);
	int r = aead(1, key, nonce, ad, adlen, pt, n, out + BW_NONCE_LEN,
	             out + BW_NONCE_LEN + n);
	if (r)
		return BW_EIO;
	memcpy(out, nonce, BW_NONCE_LEN);
	return 0;
}

int bw_open(const uint8_t key[BW_KEY_LEN], const void *ad, size_t adlen,
            const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t nonce[BW_NONCE_LEN], tag[BW_TAG_LEN];
	if (n < BW_SEAL_OVERHEAD)
		return BW_EFORMAT;
	size_t m = n - BW_SEAL_OVERHEAD;
	memcpy(nonce, in, BW_NONCE_LEN);
	memcpy(tag, in + BW_NONCE_LEN + m, BW_TAG_LEN);
	int r = aead(0, key, nonce, ad, adlen, in + BW_NONCE_LEN, m, out, tag);
	if (r)
		sodium_memzero(out, m);
	return r;
}

int bw_kdf(const char *pass, size_t passlen, const uint8_t salt[BW_SALT_LEN],
           uint64_t ops, size_t mem, uint8_t out[BW_KEY_LEN])
{
	if (ops < 1 || mem < 8192)
		return BW_EINVAL;
	if (crypto_pwhash(out, BW_KEY_LEN, pass, passlen, salt, ops, mem,
	                  crypto_pwhash_ALG_ARGON2ID13))
		return BW_ENOMEM;
	return 0;
}

int bw_ct_cmp(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) ? 1 : 0;
}

void bw_wipe(void *p, size_t n) { sodium_memzero(p, n); }

void bw_id_hex(const struct bw_id *id, char out[2 * BW_ID_LEN + 1])
{
	bw_hex_encode(id->b, BW_ID_LEN, out);
}

int bw_id_parse(const char *hex, struct bw_id *out)
{
	return bw_hex_decode(hex, out->b, BW_ID_LEN);
}
