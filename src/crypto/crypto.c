/* Keys, HMAC IDs, XChaCha20-Poly1305 and Argon2id. */
#include <bulwark/crypto.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int bw_crypto_init(void)
{
	if (sodium_init() < 0)
		return BW_EUNSUP;
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
	unsigned int len = BW_ID_LEN;
	HMAC(EVP_sha256(), k->mac, BW_KEY_LEN, data, n, out->b, &len);
}

void bw_sha256(const void *p, size_t n, struct bw_id *out)
{
	SHA256(p, n, out->b);
}

struct bw_sha256 {
	EVP_MD_CTX *ctx;
};

struct bw_sha256 *bw_sha256_new(void)
{
	struct bw_sha256 *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx || !EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(s->ctx);
		free(s);
		return NULL;
	}
	return s;
}

void bw_sha256_update(struct bw_sha256 *s, const void *p, size_t n)
{
	EVP_DigestUpdate(s->ctx, p, n);
}

void bw_sha256_final(struct bw_sha256 *s, struct bw_id *out)
{
	unsigned int len = BW_ID_LEN;
	EVP_DigestFinal_ex(s->ctx, out->b, &len);
	EVP_MD_CTX_free(s->ctx);
	free(s);
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
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		goto out;
	if (!EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc))
		goto out;
	if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL))
		goto out;
	if (!EVP_CipherInit_ex(c, NULL, NULL, sub, iv, enc))
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
	EVP_CIPHER_CTX_free(c);
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
